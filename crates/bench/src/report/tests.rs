use super::*;

#[test]
fn csv_tables_quote_what_needs_it() {
    let rows = [
        vec!["1000".to_owned(), "206.0".into(), String::new()],
        vec!["2, with comma".into(), "\"q\"".into(), "x".into()],
    ];
    let text = String::from_utf8(csv_table(&["apps", "tps", "paper"], rows).unwrap()).unwrap();
    assert_eq!(text, "apps,tps,paper\n1000,206.0,\n\"2, with comma\",\"\"\"q\"\"\",x\n");
}

#[test]
fn line_charts_are_svg_with_a_polyline_per_series() {
    let chart = LineChart {
        title: "Round trips/s vs. applications".into(),
        x_label: "applications".into(),
        y_label: "round trips/s".into(),
        series: vec![
            Series {
                label: "ipechain".into(),
                points: vec![(1000.0, 180.0), (1500.0, 160.5), (2000.0, 150.0)],
                color: (0x1f, 0x77, 0xb4),
                dashed: false,
                marker: Marker::Circle,
            },
            Series {
                label: "paper <Fabric>".into(),
                points: vec![(1000.0, 206.0), (2000.0, 148.0)],
                color: (0xd6, 0x27, 0x28),
                dashed: true,
                marker: Marker::Square,
            },
        ],
    };
    let svg = chart.to_svg().unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
    assert!(svg.contains("<polyline") && svg.contains("<circle") && svg.contains("<rect"), "{svg}");
    assert!(svg.contains("#1F77B4") || svg.contains("#1f77b4"), "{svg}");
    assert!(svg.contains("paper &lt;Fabric&gt;"), "text is escaped: {svg}");
    // Nothing to draw, or a single x: still a chart.
    for points in [vec![], vec![(5.0, 0.0)]] {
        let one = LineChart { series: vec![Series { points, ..chart.series[0].clone() }], ..chart.clone() };
        assert!(one.to_svg().unwrap().starts_with("<svg"));
    }
}
