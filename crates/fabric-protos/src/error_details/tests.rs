use super::*;

fn detail(n: u8) -> ErrorDetail {
    ErrorDetail {
        address: format!("peer{n}.org{n}.example.com:7051"),
        msp_id: format!("Org{n}MSP"),
        message: format!("chaincode response 500, boom {n}"),
    }
}

#[test]
fn details_round_trip_through_the_status_trailer() {
    let details = [detail(1), detail(2)];
    let status = status_with_details(
        tonic::Code::Aborted,
        "failed to endorse transaction, see attached details for more info",
        &details,
    );
    assert_eq!(status.code(), tonic::Code::Aborted);
    assert_eq!(error_details(&status), Ok(details.to_vec()));
    let rpc = RpcStatus::decode(status.details()).expect("a google.rpc.Status");
    assert_eq!(rpc.code, tonic::Code::Aborted as i32);
    assert_eq!(rpc.message, "failed to endorse transaction, see attached details for more info");
    assert!(rpc.details.iter().all(|a| a.type_url == ERROR_DETAIL_TYPE_URL));
}

#[test]
fn no_details_no_trailer() {
    let status = status_with_details(tonic::Code::InvalidArgument, "a prepared transaction is required", &[]);
    assert!(status.details().is_empty());
    assert_eq!(error_details(&status), Ok(Vec::new()));
}

#[test]
fn malformed_details_are_errors() {
    let garbage = tonic::Status::with_details(tonic::Code::Unknown, "x", vec![0xff, 0xff].into());
    assert!(matches!(error_details(&garbage), Err(ErrorDetailsError::Status(_))));
    let bad_detail = RpcStatus {
        code: 2,
        message: "x".into(),
        details: vec![prost_types::Any { type_url: "t".into(), value: vec![0x0a, 0x09] }],
    };
    let status = tonic::Status::with_details(tonic::Code::Unknown, "x", bad_detail.encode_to_vec().into());
    assert!(matches!(error_details(&status), Err(ErrorDetailsError::Detail { index: 0, .. })));
}
