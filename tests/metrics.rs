//! The Prometheus endpoint, scraped with a plain HTTP client while queries of every kind
//! arrive: each counter must move by exactly what was sent.

mod common;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

fn key(name: &str, label: &str, value: &str) -> String {
    format!("{name}{{{label}=\"{value}\"}}")
}

#[test]
fn counters_follow_queries_and_reloads() {
    let dump = temp_dump("metrics", &std::fs::read_to_string(sample_dump()).unwrap());
    let mut server = Cnamed::start_dump(&dump, &["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_addr(&mut server);

    let start = parse_metrics(&http_get(metrics, "GET", "/metrics").1);
    assert_eq!(start[&key("cnamed_queries_total", "transport", "udp")], 0.0);
    assert_eq!(start["cnamed_snapshot_apps"], 6.0);
    assert_eq!(start["cnamed_snapshot_serial"], 2_026_112_601.0);
    assert_eq!(start["cnamed_last_reload_attempt_timestamp_seconds"], 0.0);
    assert_eq!(start["cnamed_last_reload_success_timestamp_seconds"], 0.0);
    assert_eq!(start["cnamed_reload_duration_seconds_count"], 0.0);
    assert!(start["cnamed_dump_modified_timestamp_seconds"] > 1.7e9);
    assert!(start["cnamed_snapshot_load_seconds"] > 0.0);
    assert!(start["process_start_time_seconds"] > 1.7e9);
    assert!(start["process_resident_memory_bytes"] > 1e6);
    assert!(start["process_cpu_seconds_total"] >= 0.0);
    assert!(
        start["process_open_fds"] >= 8.0,
        "sockets, epoll, the listener"
    );
    assert!(start["process_max_fds"] >= start["process_open_fds"]);
    let build = format!(
        "cnamed_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(start[&build], 1.0);

    for _ in 0..5 {
        let reply = decode(&server.udp(&encode(&query(
            "ws-123456.apps.example.com.",
            RecordType::A,
        ))));
        assert_eq!(reply.response_code(), ResponseCode::NoError);
    }
    for name in ["ws-404.apps.example.com.", "api-405.apps.example.com."] {
        let reply = decode(&server.udp(&encode(&query(name, RecordType::AAAA))));
        assert_eq!(reply.response_code(), ResponseCode::NXDomain);
    }
    let reply = decode(&server.udp(&encode(&query("example.org.", RecordType::MX))));
    assert_eq!(reply.response_code(), ResponseCode::Refused);
    let over_tcp = decode(&server.tcp(&encode(&query("apps.example.com.", RecordType::SOA))));
    assert_eq!(over_tcp.response_code(), ResponseCode::NoError);
    let type_65000 = encode(&query(
        "ws-123456.apps.example.com.",
        RecordType::Unknown(65000),
    ));
    server.udp(&type_65000);
    // No question: FORMERR. Then two datagrams that get no reply at all.
    let formerr = decode(&server.udp(&raw_query(7, 0x0100, [0, 0, 0, 0], &[])));
    assert_eq!(formerr.response_code(), ResponseCode::FormErr);
    assert_eq!(server.udp_raw(&[1, 2, 3], false), None);
    let mut response = encode(&query("ws-123456.apps.example.com.", RecordType::A));
    response[2] |= 0x80;
    assert_eq!(server.udp_raw(&response, false), None);

    let udp_sent = 5 + 2 + 1 + 1 + 1 + 2;
    let m = wait_metric(
        metrics,
        &key("cnamed_dropped_total", "reason", "response"),
        1.0,
    );
    let expect = [
        (key("cnamed_queries_total", "transport", "udp"), udp_sent),
        (key("cnamed_queries_total", "transport", "tcp"), 1),
        (key("cnamed_questions_total", "qtype", "A"), 5),
        (key("cnamed_questions_total", "qtype", "AAAA"), 2),
        (key("cnamed_questions_total", "qtype", "MX"), 1),
        (key("cnamed_questions_total", "qtype", "SOA"), 1),
        (key("cnamed_questions_total", "qtype", "other"), 1),
        (key("cnamed_responses_total", "rcode", "NOERROR"), 5 + 1 + 1),
        (key("cnamed_responses_total", "rcode", "NXDOMAIN"), 2),
        (key("cnamed_responses_total", "rcode", "REFUSED"), 1),
        (key("cnamed_responses_total", "rcode", "FORMERR"), 1),
        (key("cnamed_formerr_total", "cause", "qdcount"), 1),
        (key("cnamed_formerr_total", "cause", "question"), 0),
        (key("cnamed_dropped_total", "reason", "short"), 1),
        (key("cnamed_dropped_total", "reason", "response"), 1),
        (key("cnamed_tcp_connections_accepted_total", "", ""), 1),
        ("cnamed_truncated_total".to_owned(), 0),
    ];
    for (name, value) in expect {
        let name = name.replace("{=\"\"}", "");
        assert_eq!(m[&name], value as f64, "{name}");
    }

    // A good reload, then refused ones, each counted by its reason: the old snapshot keeps
    // serving.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let grown = r#"{"serial": 2026112602, "apps": {"123456": "mt1", "234567": "mt1",
        "345678": "eu", "456789": "us2", "my-app": "eu", "demo-42": "ap1", "1": "mt1"}}"#;
    std::fs::write(&dump, grown).unwrap();
    server.signal("HUP");
    server.wait_log("reloaded");
    for (bad, reason) in [
        ("{", "invalid"),
        (r#"{"serial": 2026112603, "apps": {"1": "mt1"}}"#, "shrink"),
        (r#"{"serial": 2026112603, "apps": {}}"#, "empty"),
        (r#"{"serial": 5, "apps": {"1": "mt1"}}"#, "serial"),
    ] {
        std::fs::write(&dump, bad).unwrap();
        server.signal("HUP");
        let line = server.wait_log("reload failed");
        assert!(line.contains("still serving serial 2026112602"), "{line}");
        let m = parse_metrics(&http_get(metrics, "GET", "/metrics").1);
        assert_eq!(
            m[&key("cnamed_reloads_refused_total", "reason", reason)],
            1.0,
            "{bad}"
        );
    }
    let m = parse_metrics(&http_get(metrics, "GET", "/metrics").1);
    assert_eq!(m[&key("cnamed_reloads_total", "result", "ok")], 1.0);
    assert_eq!(m[&key("cnamed_reloads_total", "result", "refused")], 4.0);
    assert_eq!(
        m[&key("cnamed_reloads_refused_total", "reason", "cluster")],
        0.0
    );
    assert_eq!(m["cnamed_snapshot_apps"], 7.0);
    assert_eq!(m["cnamed_snapshot_serial"], 2_026_112_602.0);
    // Every reload, taken or refused, timed; the buckets cumulative.
    let bucket = |le: &str| m[&key("cnamed_reload_duration_seconds_bucket", "le", le)];
    assert_eq!(m["cnamed_reload_duration_seconds_count"], 5.0);
    assert_eq!(bucket("+Inf"), 5.0);
    assert!(bucket("0.0001") <= bucket("0.1") && bucket("0.1") <= bucket("+Inf"));
    assert!(m["cnamed_reload_duration_seconds_sum"] > 0.0);
    assert!(m["cnamed_last_reload_attempt_timestamp_seconds"] >= before.floor());
    let succeeded = m["cnamed_last_reload_success_timestamp_seconds"];
    assert!(
        succeeded >= before.floor()
            && succeeded <= m["cnamed_last_reload_attempt_timestamp_seconds"]
    );
    // The dump served was written after `before` (file times may trail the clock a little).
    assert!(m["cnamed_dump_modified_timestamp_seconds"] >= before.floor() - 1.0);
}

#[test]
fn tcp_connection_counters() {
    let mut server = Cnamed::start(&["--metrics", "127.0.0.1:0", "--tcp-io-timeout", "200"]);
    let metrics = metrics_addr(&mut server);
    let open_key = "cnamed_tcp_connections_open";
    let mut idle = server.tcp_connect();
    let mut stalled = server.tcp_connect();
    // Half a length prefix: stalled mid-message, closed by the I/O timeout.
    std::io::Write::write_all(&mut stalled, &[0]).unwrap();
    let m = wait_metric(metrics, open_key, 2.0);
    assert_eq!(m[open_key], 2.0);
    let closed = key(
        "cnamed_tcp_connections_closed_total",
        "reason",
        "io_timeout",
    );
    let m = wait_metric(metrics, &closed, 1.0);
    assert_eq!(m[&closed], 1.0);
    assert_eq!(m[open_key], 1.0);
    assert_eq!(read_frame(&mut stalled), None, "closed");
    // The client closes the other one.
    let reply = {
        std::io::Write::write_all(
            &mut idle,
            &frame(&encode(&query(
                "ws-123456.apps.example.com.",
                RecordType::A,
            ))),
        )
        .unwrap();
        read_frame(&mut idle).unwrap()
    };
    assert_eq!(decode(&reply).answers().len(), 1);
    drop(idle);
    let peer = key("cnamed_tcp_connections_closed_total", "reason", "peer");
    let m = wait_metric(metrics, &peer, 1.0);
    assert_eq!(m[&peer], 1.0);
    assert_eq!(m[open_key], 0.0);
}

#[test]
fn http_errors() {
    let mut server = Cnamed::start(&["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_addr(&mut server);
    assert_eq!(http_get(metrics, "GET", "/").0, 404);
    assert_eq!(http_get(metrics, "POST", "/metrics").0, 405);
    let (status, body) = http_get(metrics, "GET", "/metrics?x=1");
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE cnamed_queries_total counter"));
}

/// One raw HTTP exchange: the whole response as text.
fn raw_http(addr: std::net::SocketAddr, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// RFC 9110 §9.3.2: HEAD announces the Content-Length GET would send; §15.5.6: a 405 has Allow.
#[test]
fn head_and_method_not_allowed() {
    let mut server = Cnamed::start(&["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_addr(&mut server);
    // The process family (CPU seconds, resident memory) may change a digit's worth between
    // two renderings on a busy box: the lengths must agree in one of a few tries.
    let mut lengths = Vec::new();
    for _ in 0..5 {
        let (_, body) = http_get(metrics, "GET", "/metrics");
        let head = raw_http(metrics, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let (fields, rest) = head.split_once("\r\n\r\n").unwrap();
        assert!(fields.starts_with("HTTP/1.1 200"), "{fields}");
        assert_eq!(rest, "", "no body");
        let length: usize = fields
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        lengths.push((length, body.len()));
        if length == body.len() {
            break;
        }
    }
    let (head, get) = *lengths.last().unwrap();
    assert_eq!(head, get, "HEAD and GET lengths, try by try: {lengths:?}");
    let post = raw_http(metrics, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    assert!(post.contains("\r\nAllow: GET, HEAD\r\n"), "{post}");
}

/// Slow and idle clients cannot hold the endpoint: with 100 of them connected, one sending a
/// byte now and then, a scrape is still answered (within the client's 2 s read timeout).
#[test]
fn slow_clients_do_not_block_a_scrape() {
    use std::io::Write;
    let mut server = Cnamed::start(&["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_addr(&mut server);
    let mut slow: Vec<std::net::TcpStream> = (0..100)
        .map(|_| std::net::TcpStream::connect(metrics).unwrap())
        .collect();
    for (i, stream) in slow.iter_mut().enumerate() {
        if i % 2 == 0 {
            stream.write_all(b"GET /met").unwrap(); // half a request line, then nothing
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    for _ in 0..3 {
        let (status, body) = http_get(metrics, "GET", "/metrics");
        assert_eq!(status, 200);
        assert!(body.contains("cnamed_queries_total"));
    }
    // Each client has 2 s for its whole exchange: an idle one is then closed.
    use std::io::Read;
    let idle = &mut slow[1];
    idle.set_read_timeout(Some(std::time::Duration::from_secs(4)))
        .unwrap();
    assert_eq!(
        idle.read(&mut [0; 16]).unwrap(),
        0,
        "closed at the deadline"
    );
}
