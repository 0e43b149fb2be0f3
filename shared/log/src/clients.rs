//! Client settings in one place, so the API, the worker, the bench and the tests produce alike.
use rdkafka::config::ClientConfig;

/// An idempotent producer with `acks=all`: no duplicates from its own retries, no loss on leader change.
pub fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        // A few milliseconds of linger batch a busy moment's events into one request per
        // partition: the brokers' cost is per request far more than per record.
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("message.timeout.ms", "10000")
        .set("socket.connection.setup.timeout.ms", "3000")
        .set("reconnect.backoff.max.ms", "1000");
    config
}

/// A consumer that commits only offsets the application stored after its effects are durable.
pub fn consumer_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "500")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // The broker answers a fetch as soon as a record arrives (fetch.min.bytes is 1), so a longer
        // wait costs no latency, only fewer empty round trips while the topic is quiet.
        .set("fetch.wait.max.ms", "100")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("socket.connection.setup.timeout.ms", "3000")
        .set("reconnect.backoff.max.ms", "1000");
    config
}
