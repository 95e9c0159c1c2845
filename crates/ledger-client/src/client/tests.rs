use super::*;
use fabric_protos::error_details::status_with_details;

fn detail(message: &str) -> ErrorDetail {
    ErrorDetail { address: "peer0.org1:7051".into(), msp_id: "Org1MSP".into(), message: message.into() }
}

#[test]
fn a_chaincode_response_in_the_details_is_a_refusal_with_its_status_as_data() {
    let s = status_with_details(
        tonic::Code::Aborted,
        "failed to endorse transaction, see attached details for more info",
        &[detail("chaincode response 409, id used, twice")],
    );
    match from_status(s) {
        ClientError::Refused { status, message, address } => {
            assert_eq!(
                (status, message.as_str(), address.as_str()),
                (409, "id used, twice", "peer0.org1:7051")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_gateway_errors_stay_statuses_with_their_details() {
    let s = status_with_details(
        tonic::Code::Aborted,
        "failed to endorse transaction, see attached details for more info",
        &[detail("access denied: Org9MSP is not a writer")],
    );
    let e = from_status(s);
    assert!(matches!(&e, ClientError::Status(s) if s.code() == tonic::Code::Aborted), "{e:?}");
    assert_eq!(e.details(), vec![detail("access denied: Org9MSP is not a writer")]);
    assert_eq!(e.contract_status(), None);
    // Without details, or with a detail that only looks like a chaincode response.
    assert!(matches!(from_status(tonic::Status::unavailable("down")), ClientError::Status(_)));
    let s = status_with_details(tonic::Code::Unknown, "x", &[detail("chaincode response abc, no")]);
    assert!(matches!(from_status(s), ClientError::Status(_)));
}
