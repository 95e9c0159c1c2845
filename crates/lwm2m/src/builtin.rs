//! Built-in object definitions as data: the LwM2M core objects 0–7 and the IPSO Smart Objects 3300–3350.
//!
//! IPSO objects reuse resources whose id means the same in every object (5700 is always "Sensor Value",
//! a float), so they are given as one table of reusable resources plus a list of resource ids per object.
//! Each row is `(id, name, operations, multiple, mandatory, type)` with type letters
//! s=String i=Integer u=Unsigned f=Float b=Boolean o=Opaque t=Time l=Objlnk n=none (executable).

use std::collections::HashMap;

use crate::model::{ObjectModel, Operations, ResourceModel};
use crate::value::ResourceType;

type Row = (u16, &'static str, &'static str, bool, bool, char);

const SECURITY: &[Row] = &[
    (0, "LWM2M  Server URI", "", false, true, 's'),
    (1, "Bootstrap-Server", "", false, true, 'b'),
    (2, "Security Mode", "", false, true, 'i'),
    (3, "Public Key or Identity", "", false, true, 'o'),
    (4, "Server Public Key", "", false, true, 'o'),
    (5, "Secret Key", "", false, true, 'o'),
    (6, "SMS Security Mode", "", false, false, 'i'),
    (7, "SMS Binding Key Parameters", "", false, false, 'o'),
    (8, "SMS Binding Secret Key(s)", "", false, false, 'o'),
    (9, "LwM2M Server SMS Number", "", false, false, 's'),
    (10, "Short Server ID", "", false, false, 'i'),
    (11, "Client Hold Off Time", "", false, false, 'i'),
    (12, "Bootstrap-Server Account Timeout", "", false, false, 'i'),
];

const SERVER: &[Row] = &[
    (0, "Short Server ID", "R", false, true, 'i'),
    (1, "Lifetime", "RW", false, true, 'i'),
    (2, "Default Minimum Period", "RW", false, false, 'i'),
    (3, "Default Maximum Period", "RW", false, false, 'i'),
    (4, "Disable", "E", false, false, 'n'),
    (5, "Disable Timeout", "RW", false, false, 'i'),
    (6, "Notification Storing When Disabled or Offline", "RW", false, true, 'b'),
    (7, "Binding", "RW", false, true, 's'),
    (8, "Registration Update Trigger", "E", false, true, 'n'),
    (9, "Bootstrap-Request Trigger", "E", false, false, 'n'),
    (10, "APN Link", "RW", false, false, 'l'),
    (11, "TLS-DTLS Alert Code", "R", false, false, 'u'),
    (12, "Last Bootstrapped", "R", false, false, 't'),
    (13, "Registration Priority Order", "RW", false, false, 'u'),
    (14, "Initial Registration Delay Timer", "RW", false, false, 'u'),
    (15, "Registration Failure Block", "RW", false, false, 'b'),
    (16, "Bootstrap on Registration Failure", "RW", false, false, 'b'),
    (17, "Communication Retry Count", "RW", false, false, 'u'),
    (18, "Communication Retry Timer", "RW", false, false, 'u'),
    (19, "Communication Sequence Delay Timer", "RW", false, false, 'u'),
    (20, "Communication Sequence Retry Count", "RW", false, false, 'u'),
    (21, "Trigger", "RW", false, false, 'b'),
    (22, "Preferred Transport", "RW", false, false, 's'),
    (23, "Mute Send", "RW", false, false, 'b'),
];

const ACCESS_CONTROL: &[Row] = &[
    (0, "Object ID", "R", false, true, 'i'),
    (1, "Object Instance ID", "R", false, true, 'i'),
    (2, "ACL", "RW", true, false, 'i'),
    (3, "Access Control Owner", "RW", false, true, 'i'),
];

const DEVICE: &[Row] = &[
    (0, "Manufacturer", "R", false, false, 's'),
    (1, "Model Number", "R", false, false, 's'),
    (2, "Serial Number", "R", false, false, 's'),
    (3, "Firmware Version", "R", false, false, 's'),
    (4, "Reboot", "E", false, true, 'n'),
    (5, "Factory Reset", "E", false, false, 'n'),
    (6, "Available Power Sources", "R", true, false, 'i'),
    (7, "Power Source Voltage", "R", true, false, 'i'),
    (8, "Power Source Current", "R", true, false, 'i'),
    (9, "Battery Level", "R", false, false, 'i'),
    (10, "Memory Free", "R", false, false, 'i'),
    (11, "Error Code", "R", true, true, 'i'),
    (12, "Reset Error Code", "E", false, false, 'n'),
    (13, "Current Time", "RW", false, false, 't'),
    (14, "UTC Offset", "RW", false, false, 's'),
    (15, "Timezone", "RW", false, false, 's'),
    (16, "Supported Binding and Modes", "R", false, true, 's'),
    (17, "Device Type", "R", false, false, 's'),
    (18, "Hardware Version", "R", false, false, 's'),
    (19, "Software Version", "R", false, false, 's'),
    (20, "Battery Status", "R", false, false, 'i'),
    (21, "Memory Total", "R", false, false, 'i'),
    (22, "ExtDevInfo", "R", true, false, 'l'),
];

const CONN_MONITORING: &[Row] = &[
    (0, "Network Bearer", "R", false, true, 'i'),
    (1, "Available Network Bearer", "R", true, true, 'i'),
    (2, "Radio Signal Strength", "R", false, true, 'i'),
    (3, "Link Quality", "R", false, false, 'i'),
    (4, "IP Addresses", "R", true, true, 's'),
    (5, "Router IP Addresses", "R", true, false, 's'),
    (6, "Link Utilization", "R", false, false, 'i'),
    (7, "APN", "R", true, false, 's'),
    (8, "Cell ID", "R", false, false, 'i'),
    (9, "SMNC", "R", false, false, 'i'),
    (10, "SMCC", "R", false, false, 'i'),
];

const FIRMWARE: &[Row] = &[
    (0, "Package", "W", false, true, 'o'),
    (1, "Package URI", "RW", false, true, 's'),
    (2, "Update", "E", false, true, 'n'),
    (3, "State", "R", false, true, 'i'),
    (5, "Update Result", "R", false, true, 'i'),
    (6, "PkgName", "R", false, false, 's'),
    (7, "PkgVersion", "R", false, false, 's'),
    (8, "Firmware Update Protocol Support", "R", true, false, 'i'),
    (9, "Firmware Update Delivery Method", "R", false, true, 'i'),
];

const LOCATION: &[Row] = &[
    (0, "Latitude", "R", false, true, 'f'),
    (1, "Longitude", "R", false, true, 'f'),
    (2, "Altitude", "R", false, false, 'f'),
    (3, "Radius", "R", false, false, 'f'),
    (4, "Velocity", "R", false, false, 'o'),
    (5, "Timestamp", "R", false, true, 't'),
    (6, "Speed", "R", false, false, 'f'),
];

const CONN_STATS: &[Row] = &[
    (0, "SMS Tx Counter", "R", false, false, 'i'),
    (1, "SMS Rx Counter", "R", false, false, 'i'),
    (2, "Tx Data", "R", false, false, 'i'),
    (3, "Rx Data", "R", false, false, 'i'),
    (4, "Max Message Size", "R", false, false, 'i'),
    (5, "Average Message Size", "R", false, false, 'i'),
    (6, "Start", "E", false, true, 'n'),
    (7, "Stop", "E", false, true, 'n'),
    (8, "Collection Period", "RW", false, false, 'i'),
];

/// IPSO reusable resources: `(id, name, operations, type)`.
const IPSO: &[(u16, &str, &str, char)] = &[
    (5500, "Digital Input State", "R", 'b'),
    (5501, "Digital Input Counter", "R", 'i'),
    (5505, "Digital Input Counter Reset", "E", 'n'),
    (5506, "Current Time", "RW", 't'),
    (5507, "Fractional Time", "RW", 'f'),
    (5508, "Min X Value", "R", 'f'),
    (5509, "Max X Value", "R", 'f'),
    (5510, "Min Y Value", "R", 'f'),
    (5511, "Max Y Value", "R", 'f'),
    (5512, "Min Z Value", "R", 'f'),
    (5513, "Max Z Value", "R", 'f'),
    (5514, "Latitude", "R", 's'),
    (5515, "Longitude", "R", 's'),
    (5516, "Uncertainty", "R", 's'),
    (5517, "Velocity", "R", 'o'),
    (5518, "Timestamp", "R", 't'),
    (5519, "Min Limit", "R", 'f'),
    (5520, "Max Limit", "R", 'f'),
    (5521, "Delay Duration", "RW", 'f'),
    (5522, "Clip", "RW", 'o'),
    (5523, "Trigger", "E", 'n'),
    (5524, "Duration", "RW", 'f'),
    (5525, "Minimum Off-time", "RW", 'f'),
    (5526, "Mode", "RW", 'i'),
    (5527, "Text", "RW", 's'),
    (5528, "X Coordinate", "RW", 'i'),
    (5529, "Y Coordinate", "RW", 'i'),
    (5530, "Clear Display", "E", 'n'),
    (5531, "Contrast", "RW", 'f'),
    (5532, "Increase Input State", "R", 'b'),
    (5533, "Decrease Input State", "R", 'b'),
    (5536, "Current Position", "RW", 'f'),
    (5537, "Transition Time", "RW", 'f'),
    (5538, "Remaining Time", "R", 'f'),
    (5541, "Up Counter", "R", 'i'),
    (5542, "Down Counter", "R", 'i'),
    (5543, "Digital State", "R", 'b'),
    (5544, "Cumulative Time", "RW", 'f'),
    (5547, "Multi-state Input", "R", 'i'),
    (5548, "Level", "RW", 'f'),
    (5601, "Min Measured Value", "R", 'f'),
    (5602, "Max Measured Value", "R", 'f'),
    (5603, "Min Range Value", "R", 'f'),
    (5604, "Max Range Value", "R", 'f'),
    (5605, "Reset Min and Max Measured Values", "E", 'n'),
    (5700, "Sensor Value", "R", 'f'),
    (5701, "Sensor Units", "R", 's'),
    (5702, "X Value", "R", 'f'),
    (5703, "Y Value", "R", 'f'),
    (5704, "Z Value", "R", 'f'),
    (5705, "Compass Direction", "R", 'f'),
    (5706, "Colour", "RW", 's'),
    (5750, "Application Type", "RW", 's'),
    (5751, "Sensor Type", "R", 's'),
    (5800, "Instantaneous active power", "R", 'f'),
    (5801, "Min Measured active power", "R", 'f'),
    (5802, "Max Measured active power", "R", 'f'),
    (5803, "Min Range active power", "R", 'f'),
    (5804, "Max Range active power", "R", 'f'),
    (5805, "Cumulative active power", "R", 'f'),
    (5806, "Active Power Calibration", "W", 'f'),
    (5820, "Power factor", "R", 'f'),
    (5821, "Current Calibration", "RW", 'f'),
    (5822, "Reset Cumulative energy", "E", 'n'),
    (5823, "Event Identifier", "RW", 's'),
    (5824, "Start Time", "RW", 't'),
    (5825, "Duration In Min", "RW", 'i'),
    (5826, "Criticality Level", "RW", 'i'),
    (5827, "Avg Load AdjPct", "RW", 'i'),
    (5828, "Duty Cycle", "RW", 'i'),
    (5850, "On/Off", "RW", 'b'),
    (5851, "Dimmer", "RW", 'i'),
    (5852, "On time", "RW", 'i'),
    (5853, "Muti-state Output", "RW", 's'),
    (5900, "Set Point Value", "RW", 'f'),
    (5910, "Bitmap Input", "R", 'i'),
    (5911, "Bitmap Input Reset", "E", 'n'),
    (5912, "Element Description", "RW", 's'),
];

const SENSOR: &[u16] = &[5700, 5701, 5601, 5602, 5603, 5604, 5605, 5750];

/// IPSO objects: `(id, name, resource ids)`; the first resource listed is the mandatory one.
const IPSO_OBJECTS: &[(u16, &str, &[u16])] = &[
    (3300, "Generic Sensor", &[5700, 5701, 5601, 5602, 5603, 5604, 5605, 5750, 5751]),
    (3301, "Illuminance", SENSOR),
    (3302, "Presence", &[5500, 5501, 5505, 5751]),
    (3303, "Temperature", SENSOR),
    (3304, "Humidity", SENSOR),
    (3305, "Power Measurement", &[5800, 5801, 5802, 5803, 5804, 5805, 5806, 5820, 5821, 5822, 5605]),
    (3306, "Actuation", &[5850, 5851, 5852, 5853, 5750]),
    (3308, "Set Point", &[5900, 5701, 5706, 5750]),
    (3310, "Load Control", &[5823, 5824, 5825, 5826, 5827, 5828]),
    (3311, "Light Control", &[5850, 5851, 5852, 5805, 5820, 5706, 5701, 5750]),
    (3312, "Power Control", &[5850, 5851, 5852, 5805, 5820, 5750]),
    (3313, "Accelerometer", &[5702, 5703, 5704, 5701, 5603, 5604, 5750]),
    (3314, "Magnetometer", &[5702, 5703, 5704, 5701, 5705, 5750]),
    (3315, "Barometer", SENSOR),
    (3316, "Voltage", SENSOR),
    (3317, "Current", SENSOR),
    (3318, "Frequency", SENSOR),
    (3319, "Depth", SENSOR),
    (3320, "Percentage", SENSOR),
    (3321, "Altitude", SENSOR),
    (3322, "Load", SENSOR),
    (3323, "Pressure", SENSOR),
    (3324, "Loudness", SENSOR),
    (3325, "Concentration", SENSOR),
    (3326, "Acidity", SENSOR),
    (3327, "Conductivity", SENSOR),
    (3328, "Power", SENSOR),
    (3329, "Power Factor", SENSOR),
    (3330, "Distance", SENSOR),
    (3331, "Energy", &[5805, 5701, 5822, 5750]),
    (3332, "Direction", &[5705, 5601, 5602, 5605, 5750]),
    (3333, "Time", &[5506, 5507, 5750]),
    (
        3334,
        "Gyrometer",
        &[5702, 5703, 5704, 5701, 5508, 5509, 5510, 5511, 5512, 5513, 5605, 5603, 5604, 5750],
    ),
    (3335, "Colour", &[5706, 5701, 5750]),
    (3336, "Location", &[5514, 5515, 5516, 5705, 5517, 5518, 5750]),
    (3337, "Positioner", &[5536, 5537, 5538, 5601, 5602, 5605, 5519, 5520, 5750]),
    (3338, "Buzzer", &[5850, 5548, 5521, 5525, 5750]),
    (3339, "Audio Clip", &[5522, 5523, 5548, 5524, 5750]),
    (3340, "Timer", &[5521, 5538, 5525, 5523, 5850, 5501, 5544, 5543, 5526, 5750]),
    (3341, "Addressable Text Display", &[5527, 5528, 5529, 5548, 5530, 5531, 5750]),
    (3342, "On/Off switch", &[5500, 5501, 5852, 5750]),
    (3343, "Dimmer", &[5548, 5852, 5750]),
    (3344, "Up/Down Control", &[5532, 5533, 5541, 5542, 5750]),
    (3345, "Multiple Axis Joystick", &[5500, 5501, 5702, 5703, 5704, 5750]),
    (3346, "Rate", SENSOR),
    (3347, "Push button", &[5500, 5501, 5750]),
    (3348, "Multi-state Selector", &[5547, 5750]),
    (3349, "Bitmap", &[5910, 5911, 5912, 5750]),
    (3350, "Stopwatch", &[5544, 5850, 5501, 5750]),
];

fn ty(c: char) -> ResourceType {
    match c {
        's' => ResourceType::String,
        'i' => ResourceType::Integer,
        'u' => ResourceType::Unsigned,
        'f' => ResourceType::Float,
        'b' => ResourceType::Boolean,
        'o' => ResourceType::Opaque,
        't' => ResourceType::Time,
        'l' => ResourceType::Objlnk,
        _ => ResourceType::None,
    }
}

fn ops(s: &str) -> Operations {
    match s {
        "R" => Operations::R,
        "W" => Operations::W,
        "RW" => Operations::RW,
        "E" => Operations::E,
        _ => Operations::None,
    }
}

fn object(id: u16, name: &str, multiple: bool, rows: &[Row]) -> ObjectModel {
    let resources = rows
        .iter()
        .map(|&(rid, n, o, m, mand, t)| {
            let r = ResourceModel {
                id: rid,
                name: n.to_owned(),
                operations: ops(o),
                multiple: m,
                mandatory: mand,
                ty: ty(t),
                units: String::new(),
            };
            (rid, r)
        })
        .collect();
    ObjectModel { id, name: name.to_owned(), version: "1.0".into(), multiple, resources }
}

/// All built-in definitions.
pub(crate) fn objects() -> Vec<ObjectModel> {
    let mut out = vec![
        object(0, "LWM2M Security", true, SECURITY),
        object(1, "LwM2M Server", true, SERVER),
        object(2, "LwM2M Access Control", true, ACCESS_CONTROL),
        object(3, "Device", false, DEVICE),
        object(4, "Connectivity Monitoring", false, CONN_MONITORING),
        object(5, "Firmware Update", false, FIRMWARE),
        object(6, "Location", false, LOCATION),
        object(7, "Connectivity Statistics", false, CONN_STATS),
    ];
    let reusable: HashMap<u16, (&str, &str, char)> =
        IPSO.iter().map(|&(id, n, o, t)| (id, (n, o, t))).collect();
    for &(id, name, rids) in IPSO_OBJECTS {
        let rows: Vec<Row> = rids
            .iter()
            .enumerate()
            .filter_map(|(i, rid)| reusable.get(rid).map(|&(n, o, t)| (*rid, n, o, false, i == 0, t)))
            .collect();
        out.push(object(id, name, true, &rows));
    }
    out
}
