//! User object definitions loaded from OMA XML files type the values of a vendor object.

use lwm2m::{LwM2mPath, ResourceType};
use lwm2m_server::load_object_definitions;

const VENDOR: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<LWM2M><Object ObjectType="MODefinition"><Name>Vendor Meter</Name><ObjectID>31024</ObjectID>
<ObjectVersion>1.0</ObjectVersion><MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>
<Resources><Item ID="1"><Name>Reading</Name><Operations>R</Operations><MultipleInstances>Single</MultipleInstances>
<Mandatory>Mandatory</Mandatory><Type>Integer</Type><Units>Wh</Units></Item></Resources></Object></LWM2M>"#;

#[test]
fn loads_xml_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("31024.xml"), VENDOR).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let reg = load_object_definitions(&[dir.path().to_owned()]).unwrap();
    assert_eq!(reg.resource_type(31024, 1), Some(ResourceType::Integer));
    assert_eq!(reg.resource(31024, 1).unwrap().units, "Wh");
    assert!(reg.object(3303).is_some(), "built-ins kept");
    // The vendor value now decodes typed instead of opaque.
    let base: LwM2mPath = "/31024/0".parse().unwrap();
    let recs = lwm2m::codec::decode(lwm2m::ContentFormat::TLV, &[0xC1, 0x01, 0x2A], &base, &reg).unwrap();
    assert_eq!(recs[0].value, lwm2m::Value::Integer(42));
    std::fs::write(dir.path().join("bad.xml"), "<LWM2M><Object>").unwrap();
    assert!(load_object_definitions(&[dir.path().to_owned()]).is_err());
    assert!(load_object_definitions(&[dir.path().join("missing.xml")]).is_err());
}
