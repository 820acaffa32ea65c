//! The actor directory across daemon restarts, on a fresh SQLite file and a
//! fresh PostgreSQL database: config actors are upserted by id (the config
//! owns their profile and its own periods), unavailability added through
//! the API survives, an actor removed from the config leaves the directory,
//! an actor the config never defined stays.

use crate::http_support;

use chrono::{DateTime, TimeZone, Utc};
use http_support::{config_text, repo, Daemon, Db, Kind};
use leadflow_engine::{Actor, Period};
use leadflow_runtime::backend::Backend;
use leadflow_runtime::config::{ActorConfig, Config};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;

fn day(d: u32) -> Period {
    Period {
        from: Utc.with_ymd_and_hms(2030, 3, d, 0, 0, 0).unwrap(),
        until: Utc.with_ymd_and_hms(2030, 3, d + 1, 0, 0, 0).unwrap(),
    }
}

fn json_periods(p: &[Period]) -> Value {
    json!(p
        .iter()
        .map(|p| json!({"from": p.from.to_rfc3339(), "until": p.until.to_rfc3339()}))
        .collect::<Vec<_>>())
}

/// `PUT /v1/actors/{actor}/unavailability` with the admin key.
async fn put_periods(d: &Daemon, actor: &str, list: &[Period]) -> http_support::Resp {
    d.call(
        Method::PUT,
        &format!("/v1/actors/{actor}/unavailability"),
        Some("admin"),
        Some(json_periods(list)),
        &[],
    )
    .await
}

fn periods(v: &Value) -> Vec<Period> {
    let t = |x: &Value| x.as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| Period {
            from: t(&p["from"]),
            until: t(&p["until"]),
        })
        .collect()
}

fn config(edit: impl FnOnce(&mut BTreeActors)) -> Config {
    let mut c = Config::parse(&config_text(&repo()), "test.toml", Path::new("/")).unwrap();
    edit(&mut c.tenants.get_mut("aslm").unwrap().actors);
    c
}

type BTreeActors = std::collections::BTreeMap<String, ActorConfig>;

async fn restart_keeps_api_unavailability(kind: Kind) {
    // First config: dealer-mi has a configured period (1 March); a third
    // dealer exists.
    let first = config(|a| {
        a.get_mut("dealer-mi").unwrap().unavailable = vec![day(1)];
        a.insert(
            "dealer-old".into(),
            ActorConfig {
                role: "dealer".into(),
                zones: vec!["NA".into()],
                ..ActorConfig::default()
            },
        );
    });
    let d = Daemon::start_config(Db::new(kind), first, false).await;
    let r = d.get("/v1/actors/dealer-mi/unavailability", "admin").await;
    assert_eq!(periods(&r.body), [day(1)]);
    // Through the API: dealer-mi keeps the configured period and adds one,
    // dealer-rm (nothing configured) gets one.
    for (actor, list) in [
        ("dealer-mi", vec![day(1), day(2)]),
        ("dealer-rm", vec![day(3)]),
    ] {
        let r = put_periods(&d, actor, &list).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    // Another tool adds an actor to the stored directory.
    let t = &d.server.as_ref().unwrap().state.tenants["aslm"];
    let mut dir = t.backend.actors().await.unwrap();
    dir.push(Actor {
        id: "ext-1".into(),
        role: "partner".into(),
        unavailable: vec![day(9)],
        ..Actor::default()
    });
    t.backend.set_actors(dir).await.unwrap();
    let mut db = d.stop().await;

    // Second config: dealer-mi also covers MB and its configured period
    // moved from 1 to 4 March; dealer-old is gone. Started twice: a restart
    // on the same config changes nothing.
    let second = config(|a| {
        let mi = a.get_mut("dealer-mi").unwrap();
        mi.zones = vec!["MI".into(), "MB".into()];
        mi.unavailable = vec![day(4)];
    });
    for round in 0..2 {
        let d = Daemon::start_config(db, second.clone(), false).await;
        let r = d.get("/v1/actors", "admin").await;
        let list = r.body.as_array().unwrap();
        let ids: Vec<&str> = list.iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["dealer-mi", "dealer-rm", "ext-1"], "round {round}");
        assert_eq!(list[0]["zones"], json!(["MI", "MB"]));
        assert_eq!(
            periods(&list[0]["unavailable"]),
            [day(2), day(4)],
            "round {round}: the API's period stays, the config's follows the file"
        );
        assert_eq!(periods(&list[1]["unavailable"]), [day(3)], "round {round}");
        assert_eq!(periods(&list[2]["unavailable"]), [day(9)], "round {round}");
        assert_eq!(d.get("/v1/actors/dealer-old", "admin").await.status, 404);
        // The store's directory (what assignment reads) is the same.
        let t = &d.server.as_ref().unwrap().state.tenants["aslm"];
        let stored = t.backend.actors().await.unwrap();
        assert_eq!(stored.len(), 3);
        assert_eq!(stored[0].unavailable, [day(2), day(4)]);
        db = d.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_restart_keeps_api_unavailability() {
    restart_keeps_api_unavailability(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_restart_keeps_api_unavailability() {
    restart_keeps_api_unavailability(Kind::Pg).await;
}

/// Another process (a second daemon, a tool) adds an actor to the stored
/// directory while this daemon runs: a PUT of someone else's periods here
/// keeps it, and the actor endpoints show it with its live load.
async fn put_keeps_actors_written_elsewhere(kind: Kind) {
    let d = Daemon::start_config(Db::new(kind), config(|_| {}), false).await;
    let t = &d.server.as_ref().unwrap().state.tenants["aslm"];
    let mut dir = t.backend.actors().await.unwrap();
    dir.push(Actor {
        id: "ext-1".into(),
        role: "dealer".into(),
        unavailable: vec![day(9)],
        ..Actor::default()
    });
    t.backend.set_actors(dir).await.unwrap();

    let r = put_periods(&d, "dealer-rm", &[day(3)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let stored = t.backend.actors().await.unwrap();
    let ext = stored.iter().find(|a| a.id == "ext-1").expect("ext-1 kept");
    assert_eq!(ext.unavailable, [day(9)]);
    let rm = stored.iter().find(|a| a.id == "dealer-rm").unwrap();
    assert_eq!(rm.unavailable, [day(3)]);

    // Read back through the API: the actor written elsewhere is listed, can
    // be read alone and given periods; an actor nobody stored is 404.
    let r = d.get("/v1/actors/ext-1", "admin").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(periods(&r.body["unavailable"]), [day(9)]);
    assert_eq!(r.body["load"], 0);
    let r = put_periods(&d, "ext-1", &[day(10)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = put_periods(&d, "nobody", &[day(10)]).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("E_NOT_FOUND"))
    );
    let list = d.get("/v1/actors", "admin").await.body;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"ext-1"), "{ids:?}");
    let stored = t.backend.actors().await.unwrap();
    let ext = stored.iter().find(|a| a.id == "ext-1").unwrap();
    assert_eq!(ext.unavailable, [day(10)]);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_put_keeps_actors_written_elsewhere() {
    put_keeps_actors_written_elsewhere(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_put_keeps_actors_written_elsewhere() {
    put_keeps_actors_written_elsewhere(Kind::Pg).await;
}
