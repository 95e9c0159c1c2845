//! Unit tests of the sequencer core: no Raft, no clock, no store.

use super::*;
use std::collections::HashMap;
use std::time::Duration;

/// A chain of given height and head, with some tx ids already stored.
#[derive(Default)]
struct View {
    height: u64,
    head: Hash32,
    stored: HashMap<String, u64>,
}

impl ChainView for View {
    fn head(&self) -> (u64, Hash32) {
        (self.height, self.head)
    }
    fn stored_at(&self, tx_id: &str) -> Option<u64> {
        self.stored.get(tx_id).copied()
    }
}

fn cfg() -> CutterConfig {
    CutterConfig {
        max_message_count: 2,
        preferred_max_bytes: 1000,
        absolute_max_bytes: 2000,
        batch_timeout: Duration::from_millis(50),
    }
}

/// Tests need some instant to start from; only offsets from it matter.
#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

fn drain(core: &mut SequencerCore) -> Vec<Command> {
    std::iter::from_fn(|| core.poll_command()).collect()
}

fn order(id: RequestId, tx: &str) -> Input {
    Input::Order { id, tx_id: tx.into(), envelope: tx.as_bytes().to_vec().into() }
}

/// A core that is the confirmed leader of term 2 over `view` (Fabric's cutting: no early cuts).
fn leader(view: &View) -> SequencerCore {
    confirmed(SequencerCore::new(cfg(), 0), view)
}

/// `core`, made the confirmed leader of term 2 over `view`.
fn confirmed(mut core: SequencerCore, view: &View) -> SequencerCore {
    core.handle(t0(), Input::Role { is_leader: true, term: 2, leader: Some(1) }, view);
    assert_eq!(drain(&mut core), vec![Command::ConfirmLeadership { term: 2 }]);
    core.handle(t0(), Input::Ready { term: 2 }, view);
    assert!(drain(&mut core).is_empty());
    core
}

fn proposed(cmds: &[Command]) -> Vec<(u64, Hash32, usize)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Propose { block, .. } => Some((
                block.number(),
                Hash32::from_slice(&block.header.as_ref().unwrap().previous_hash).unwrap(),
                block.envelopes().len(),
            )),
            _ => None,
        })
        .collect()
}

fn replies(cmds: &[Command]) -> Vec<(RequestId, Result<Ordered, OrderError>)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Reply { id, result } => Some((*id, result.clone())),
            _ => None,
        })
        .collect()
}

fn block_hash(cmds: &[Command], number: u64) -> Hash32 {
    cmds.iter()
        .find_map(|c| match c {
            Command::Propose { block, .. } if block.number() == number => Some(block.header_hash()),
            _ => None,
        })
        .unwrap()
}

#[test]
fn a_follower_sends_callers_to_the_leader() {
    let view = View::default();
    let mut core = SequencerCore::new(cfg(), 0);
    core.handle(t0(), Input::Role { is_leader: false, term: 3, leader: Some(2) }, &view);
    core.handle(t0(), order(7, "a"), &view);
    assert_eq!(replies(&drain(&mut core)), vec![(7, Err(OrderError::NotLeader { leader: Some(2) }))]);
}

#[test]
fn the_leader_chains_blocks_on_the_head_including_those_in_flight() {
    let view = View { height: 5, head: Hash32::of(b"head"), ..View::default() };
    let mut core = leader(&view);
    for (id, tx) in ["a", "b", "c", "d"].iter().enumerate() {
        core.handle(t0(), order(id as u64, tx), &view);
    }
    let cmds = drain(&mut core);
    let p = proposed(&cmds);
    assert_eq!(p[0], (5, Hash32::of(b"head"), 2));
    assert_eq!(p[1], (6, block_hash(&cmds, 5), 2));
    assert!(replies(&cmds).is_empty(), "nobody is answered before commit");

    // Block 5 applied: its callers are answered; 6 still waits.
    core.handle(t0(), Input::Applied { number: 5, hash: block_hash(&cmds, 5) }, &view);
    let mut r = replies(&drain(&mut core));
    r.sort_by_key(|(id, _)| *id);
    assert_eq!(r, vec![(0, Ok(Ordered { block: 5 })), (1, Ok(Ordered { block: 5 }))]);
}

#[test]
fn the_batch_timeout_cuts_a_partial_block() {
    let view = View { height: 1, ..View::default() };
    let mut core = leader(&view);
    core.handle(t0(), order(1, "a"), &view);
    assert!(drain(&mut core).is_empty());
    let deadline = core.poll_timeout().unwrap();
    core.handle(deadline, Input::Timeout, &view);
    assert_eq!(proposed(&drain(&mut core)), vec![(1, Hash32::ZERO, 1)]);
    assert_eq!(core.poll_timeout(), None);
}

#[test]
fn a_tx_id_is_ordered_once() {
    let mut view = View { height: 3, ..View::default() };
    view.stored.insert("old".into(), 2);
    let mut core = leader(&view);
    // already in the chain: refused at once, saying where it is
    core.handle(t0(), order(1, "old"), &view);
    assert_eq!(replies(&drain(&mut core)), vec![(1, Err(OrderError::AlreadyOrdered { block: 2 }))]);
    // pending: the second caller waits with the first
    core.handle(t0(), order(2, "x"), &view);
    core.handle(t0(), order(3, "x"), &view);
    assert!(drain(&mut core).is_empty());
    core.handle(t0(), order(4, "y"), &view);
    let cmds = drain(&mut core);
    assert_eq!(proposed(&cmds), vec![(3, Hash32::ZERO, 2)]);
    core.handle(t0(), Input::Applied { number: 3, hash: block_hash(&cmds, 3) }, &view);
    let mut r = replies(&drain(&mut core));
    r.sort_by_key(|(id, _)| *id);
    assert_eq!(r.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![2, 3, 4]);
}

#[test]
fn a_skipped_block_is_requeued_with_everything_after_it() {
    let view = View { height: 10, head: Hash32::of(b"h10"), ..View::default() };
    let mut core = leader(&view);
    for (id, tx) in ["a", "b", "c", "d"].iter().enumerate() {
        core.handle(t0(), order(id as u64, tx), &view);
    }
    let cmds = drain(&mut core);
    assert_eq!(proposed(&cmds).len(), 2);
    // Block 10 did not fit the chain, whose head has meanwhile moved on.
    let moved = View { height: 11, head: Hash32::of(b"h11"), ..View::default() };
    core.handle(t0(), Input::Skipped { number: 10, hash: block_hash(&cmds, 10) }, &moved);
    let again = drain(&mut core);
    // Both blocks' envelopes are proposed again, from the real head; nobody was answered yet.
    let p = proposed(&again);
    assert_eq!(p, vec![(11, Hash32::of(b"h11"), 2), (12, block_hash(&again, 11), 2)]);
    assert!(replies(&again).is_empty());
    // The stale block 11 (chained on the skipped 10) is skipped later: not ours any more, nothing happens.
    core.handle(t0(), Input::Skipped { number: 11, hash: block_hash(&cmds, 11) }, &moved);
    assert!(drain(&mut core).is_empty());
}

#[test]
fn stepping_down_answers_pending_callers_and_lost_blocks_send_callers_on() {
    let view = View { height: 1, ..View::default() };
    let mut core = leader(&view);
    core.handle(t0(), order(1, "a"), &view);
    core.handle(t0(), order(2, "b"), &view); // block 1 proposed
    core.handle(t0(), order(3, "c"), &view); // pending in the cutter
    let cmds = drain(&mut core);
    assert_eq!(proposed(&cmds).len(), 1);

    core.handle(t0(), Input::Role { is_leader: false, term: 3, leader: Some(3) }, &view);
    assert_eq!(replies(&drain(&mut core)), vec![(3, Err(OrderError::NotLeader { leader: Some(3) }))]);

    // The new leader's block 1 wins: ours is lost, its callers go to the new leader.
    core.handle(t0(), Input::Applied { number: 1, hash: Hash32::of(b"theirs") }, &view);
    let mut r = replies(&drain(&mut core));
    r.sort_by_key(|(id, _)| *id);
    assert_eq!(
        r,
        vec![
            (1, Err(OrderError::NotLeader { leader: Some(3) })),
            (2, Err(OrderError::NotLeader { leader: Some(3) }))
        ]
    );
}

#[test]
fn a_new_leader_rechecks_what_it_accepted_while_confirming() {
    let mut view = View { height: 4, ..View::default() };
    let mut core = SequencerCore::new(cfg(), 0);
    core.handle(t0(), Input::Role { is_leader: true, term: 5, leader: Some(1) }, &view);
    drain(&mut core);
    core.handle(t0(), order(1, "a"), &view);
    core.handle(t0(), order(2, "b"), &view);
    // Nothing is proposed before leadership is confirmed.
    assert!(proposed(&drain(&mut core)).is_empty());
    // Meanwhile the previous leader's block holding "a" was applied.
    view.stored.insert("a".into(), 3);
    core.handle(t0(), Input::Ready { term: 5 }, &view);
    let cmds = drain(&mut core);
    assert_eq!(replies(&cmds), vec![(1, Ok(Ordered { block: 3 }))]);
    assert!(proposed(&cmds).is_empty(), "b alone waits for the timer");
    let deadline = core.poll_timeout().unwrap();
    core.handle(deadline, Input::Timeout, &view);
    assert_eq!(proposed(&drain(&mut core)), vec![(4, Hash32::ZERO, 1)]);
}

#[test]
fn at_most_eight_blocks_are_in_flight() {
    let view = View { height: 1, ..View::default() };
    let mut core = leader(&view);
    for i in 0..20u64 {
        core.handle(t0(), order(i, &format!("tx{i}")), &view);
    }
    let cmds = drain(&mut core);
    assert_eq!(proposed(&cmds).len(), MAX_INFLIGHT);
    core.handle(t0(), Input::Applied { number: 1, hash: block_hash(&cmds, 1) }, &view);
    assert_eq!(proposed(&drain(&mut core)), vec![(9, block_hash(&cmds, 8), 2)]);
}

#[test]
fn too_large_envelopes_are_refused() {
    let view = View::default();
    let mut core = leader(&view);
    core.handle(t0(), Input::Order { id: 1, tx_id: "big".into(), envelope: vec![0; 2001].into() }, &view);
    assert_eq!(replies(&drain(&mut core)), vec![(1, Err(OrderError::TooLarge { size: 2001, max: 2000 }))]);
}

/// A confirmed leader (term 2, empty chain) cutting early below 4 envelopes per 10 batch timeouts (500 ms), with
/// blocks of up to 10 envelopes (so only the timer or an early cut ends a batch here).
fn eager_leader(view: &View) -> SequencerCore {
    confirmed(SequencerCore::new(CutterConfig { max_message_count: 10, ..cfg() }, 4), view)
}

#[test]
fn an_idle_leader_proposes_a_lone_envelope_at_once() {
    let view = View { height: 1, ..View::default() };
    let mut core = eager_leader(&view);
    core.handle(t0(), order(1, "a"), &view);
    let cmds = drain(&mut core);
    assert_eq!(proposed(&cmds), vec![(1, Hash32::ZERO, 1)]);
    assert!(matches!(cmds[..], [Command::Propose { early: true, .. }]), "counted as an early cut");
    assert_eq!(core.poll_timeout(), None, "nothing waits for the timer");
}

#[test]
fn at_low_load_what_arrives_during_a_round_goes_into_the_next_block_when_it_ends() {
    let view = View { height: 1, ..View::default() };
    let mut core = eager_leader(&view);
    let t = t0();
    core.handle(t, order(1, "a"), &view);
    let first = drain(&mut core);
    assert_eq!(proposed(&first).len(), 1);
    // Block 1 is in consensus: b and c wait (group commit), though the timer has not fired.
    core.handle(t + Duration::from_millis(1), order(2, "b"), &view);
    core.handle(t + Duration::from_millis(2), order(3, "c"), &view);
    assert!(proposed(&drain(&mut core)).is_empty());
    // Block 1 applied: b and c are proposed together at once.
    core.handle(
        t + Duration::from_millis(5),
        Input::Applied { number: 1, hash: block_hash(&first, 1) },
        &view,
    );
    let cmds = drain(&mut core);
    assert_eq!(proposed(&cmds), vec![(2, block_hash(&first, 1), 2)]);
    assert_eq!(replies(&cmds), vec![(1, Ok(Ordered { block: 1 }))]);
    assert_eq!(core.poll_timeout(), None);
}

#[test]
fn under_load_the_leader_waits_for_the_timer_and_cuts_early_again_once_quiet() {
    let view = View { height: 1, ..View::default() };
    let mut core = eager_leader(&view);
    let t = t0();
    core.handle(t, order(1, "a"), &view);
    let first = drain(&mut core);
    assert_eq!(proposed(&first).len(), 1, "quiet so far: a is cut at once");
    for (i, tx) in ["b", "c", "d"].iter().enumerate() {
        core.handle(t + Duration::from_millis(1 + i as u64), order(2 + i as u64, tx), &view);
    }
    // Four envelopes within the window: no early cut, even with nothing in flight.
    core.handle(
        t + Duration::from_millis(10),
        Input::Applied { number: 1, hash: block_hash(&first, 1) },
        &view,
    );
    assert!(proposed(&drain(&mut core)).is_empty());
    let deadline = core.poll_timeout().unwrap();
    assert_eq!(deadline, t + Duration::from_millis(1) + Duration::from_millis(50));
    core.handle(deadline, Input::Timeout, &view);
    let second = drain(&mut core);
    assert_eq!(proposed(&second), vec![(2, block_hash(&first, 1), 3)]);
    assert!(matches!(second[..], [Command::Propose { early: false, .. }]), "cut by the timer");
    core.handle(deadline, Input::Applied { number: 2, hash: block_hash(&second, 2) }, &view);
    drain(&mut core);
    // Still within the window of b: e waits for the timer.
    core.handle(t + Duration::from_millis(400), order(9, "e"), &view);
    assert!(proposed(&drain(&mut core)).is_empty());
    assert_eq!(core.poll_timeout(), Some(t + Duration::from_millis(450)));
    core.handle(t + Duration::from_millis(450), Input::Timeout, &view);
    let third = drain(&mut core);
    assert_eq!(proposed(&third), vec![(3, block_hash(&second, 2), 1)]);
    core.handle(
        t + Duration::from_millis(460),
        Input::Applied { number: 3, hash: block_hash(&third, 3) },
        &view,
    );
    drain(&mut core);
    // The oldest of the last four arrivals (c, d, e, f) is a whole window old: quiet again, f is cut at once.
    core.handle(t + Duration::from_millis(502), order(10, "f"), &view);
    assert_eq!(proposed(&drain(&mut core)), vec![(4, block_hash(&third, 3), 1)]);
}

#[test]
fn a_follower_or_an_unconfirmed_leader_never_cuts_early() {
    let mut view = View { height: 4, ..View::default() };
    let mut core = SequencerCore::new(CutterConfig { max_message_count: 10, ..cfg() }, 4);
    core.handle(t0(), order(1, "a"), &view);
    assert_eq!(replies(&drain(&mut core)), vec![(1, Err(OrderError::NotLeader { leader: None }))]);
    core.handle(t0(), Input::Role { is_leader: true, term: 5, leader: Some(1) }, &view);
    drain(&mut core);
    core.handle(t0(), order(2, "b"), &view);
    assert!(proposed(&drain(&mut core)).is_empty(), "confirming: nothing is proposed");
    view.height = 4;
    core.handle(t0(), Input::Ready { term: 5 }, &view);
    // Confirmed, idle and quiet: b (accepted while confirming) goes at once.
    assert_eq!(proposed(&drain(&mut core)), vec![(4, Hash32::ZERO, 1)]);
}
