//! The test harness itself works: influxd starts, takes a write, answers a query.
mod common;

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs influxd 1.x on PATH (Debian influxdb): cargo test --features system-tests"
)]
fn influxd_starts_accepts_a_write_and_answers_queries() {
    let influx = common::InfluxD::start();
    influx.create_db("smoke");
    let (status, body) = common::http(
        "POST",
        influx.port,
        "/write?db=smoke&precision=ns",
        &[],
        b"m,t=a v=1i 1700000000000000000\n",
    )
    .unwrap();
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    assert_eq!(influx.count("smoke", "m", "v"), 1);
}
