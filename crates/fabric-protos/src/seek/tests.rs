use super::*;
use crate::orderer::{SeekNewest, SeekNextCommit, SeekOldest, SeekSpecified};

fn oldest() -> SeekPosition {
    SeekPosition { r#type: Some(seek_position::Type::Oldest(SeekOldest {})) }
}
fn newest() -> SeekPosition {
    SeekPosition { r#type: Some(seek_position::Type::Newest(SeekNewest {})) }
}
fn next_commit() -> SeekPosition {
    SeekPosition { r#type: Some(seek_position::Type::NextCommit(SeekNextCommit {})) }
}
fn at(number: u64) -> SeekPosition {
    SeekPosition { r#type: Some(seek_position::Type::Specified(SeekSpecified { number })) }
}
fn seek(start: SeekPosition, stop: SeekPosition) -> SeekInfo {
    SeekInfo { start: Some(start), stop: Some(stop), ..Default::default() }
}
fn plan(start: SeekPosition, stop: SeekPosition, height: u64) -> Result<(u64, Stop), SeekError> {
    plan_deliver(&seek(start, stop), height).map(|p| (p.start, p.stop))
}

#[test]
fn starts_resolve_as_fabrics_file_ledger() {
    let forever = at(u64::MAX);
    assert_eq!(plan(oldest(), forever, 10), Ok((0, Stop::At(u64::MAX))));
    assert_eq!(plan(newest(), forever, 10), Ok((9, Stop::At(u64::MAX))));
    assert_eq!(plan(at(4), forever, 10), Ok((4, Stop::At(u64::MAX))));
    assert_eq!(plan(at(10), forever, 10), Ok((10, Stop::At(u64::MAX))), "the next block: waits");
    assert_eq!(plan(at(11), forever, 10), Err(SeekError::StartNotFound));
    assert_eq!(plan(next_commit(), forever, 10), Ok((10, Stop::At(u64::MAX))));
    assert_eq!(plan(newest(), forever, 0), Err(SeekError::StartNotFound));
    assert_eq!(plan(SeekPosition::default(), forever, 10), Err(SeekError::StartNotFound));
}

#[test]
fn stops_resolve_as_fabrics_deliver() {
    assert_eq!(plan(at(3), oldest(), 10), Ok((3, Stop::At(3))), "oldest stop = the start");
    assert_eq!(plan(oldest(), newest(), 10), Ok((0, Stop::At(9))));
    assert_eq!(plan(newest(), newest(), 10), Ok((9, Stop::At(9))), "newest..newest is one block");
    assert_eq!(plan(next_commit(), newest(), 10), Ok((10, Stop::Never)), "Fabric streams on");
    assert_eq!(plan(at(2), at(5), 10), Ok((2, Stop::At(5))));
    assert_eq!(plan(at(5), at(2), 10), Err(SeekError::StopBeforeStart { start: 5, stop: 2 }));
    // fabric-gateway's "forever" is 2^53 - 1.
    assert_eq!(plan(next_commit(), at((1 << 53) - 1), 10), Ok((10, Stop::At((1 << 53) - 1))));
}

#[test]
fn malformed_requests_are_refused_with_fabrics_status() {
    let missing = SeekInfo { start: Some(oldest()), ..Default::default() };
    assert_eq!(plan_deliver(&missing, 10), Err(SeekError::MissingPosition));
    assert_eq!(SeekError::MissingPosition.status(), Status::BadRequest);
    assert_eq!(plan(oldest(), SeekPosition::default(), 10), Err(SeekError::MissingPosition));
    assert_eq!(SeekError::StopBeforeStart { start: 5, stop: 2 }.status(), Status::BadRequest);
    assert_eq!(SeekError::StartNotFound.status(), Status::NotFound);
}

#[test]
fn behavior_and_content_type_are_carried() {
    let mut s = seek(oldest(), newest());
    let p = plan_deliver(&s, 3).expect("plan");
    assert!(!p.fail_if_not_ready && !p.headers_only);
    s.behavior = seek_info::SeekBehavior::FailIfNotReady as i32;
    s.content_type = seek_info::SeekContentType::HeaderWithSig as i32;
    let p = plan_deliver(&s, 3).expect("plan");
    assert!(p.fail_if_not_ready && p.headers_only);
}

#[test]
fn chaincode_events_start_where_fabrics_gateway_does() {
    assert_eq!(chaincode_events_start(None, None, 7), Ok(7));
    assert_eq!(chaincode_events_start(Some(&SeekPosition::default()), None, 7), Ok(7));
    assert_eq!(chaincode_events_start(Some(&next_commit()), None, 7), Ok(7));
    assert_eq!(chaincode_events_start(Some(&at(2)), None, 7), Ok(2));
    assert_eq!(chaincode_events_start(Some(&at(2)), Some(5), 7), Ok(5), "the resumed tx's block wins");
    assert_eq!(chaincode_events_start(Some(&oldest()), None, 7), Err(InvalidStartPosition));
    assert_eq!(chaincode_events_start(Some(&newest()), None, 7), Err(InvalidStartPosition));
}

fn event(chaincode: &str, tx: &str) -> ChaincodeEvent {
    ChaincodeEvent { chaincode_id: chaincode.into(), tx_id: tx.into(), ..Default::default() }
}

#[test]
fn event_filter_resumes_after_the_checkpointed_transaction() {
    let events = [event("ipe", "t1"), event("kv", "t2"), event("ipe", "t3"), event("ipe", "t4")];
    let passed = |mut f: ChaincodeEventFilter| -> Vec<String> {
        events.iter().filter(|e| f.pass(e)).map(|e| e.tx_id.clone()).collect()
    };
    assert_eq!(passed(ChaincodeEventFilter::new("ipe", "")), ["t1", "t3", "t4"]);
    assert_eq!(passed(ChaincodeEventFilter::new("ipe", "t1")), ["t3", "t4"]);
    assert_eq!(passed(ChaincodeEventFilter::new("ipe", "t3")), ["t4"]);
    // The checkpointed transaction's event may belong to another chaincode: skipping still ends there.
    assert_eq!(passed(ChaincodeEventFilter::new("ipe", "t2")), ["t3", "t4"]);
    assert!(passed(ChaincodeEventFilter::new("ipe", "unknown")).is_empty());
}

#[test]
fn a_seek_request_is_timely_within_fifteen_minutes_of_the_server() {
    let at = |seconds| ChannelHeader {
        timestamp: Some(prost_types::Timestamp { seconds, nanos: 0 }),
        ..Default::default()
    };
    let now = 1_800_000_000;
    assert_eq!(check_seek_time(&at(now), now), Ok(()));
    assert_eq!(check_seek_time(&at(now - 900), now), Ok(()));
    assert_eq!(check_seek_time(&at(now + 900), now), Ok(()));
    assert_eq!(
        check_seek_time(&at(now - 901), now),
        Err(SeekTimeError::OutsideWindow { at: now - 901, now })
    );
    assert_eq!(
        check_seek_time(&at(now + 901), now),
        Err(SeekTimeError::OutsideWindow { at: now + 901, now })
    );
    assert_eq!(check_seek_time(&ChannelHeader::default(), now), Err(SeekTimeError::Missing));
}
