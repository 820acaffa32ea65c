//! Typed list filters and served views over HTTP (issue 17), on a fresh
//! SQLite file and a fresh PostgreSQL database: each view as each caller
//! sees it (own records, the pool of its zones, followed zones), PII left
//! out, the caller's own conditions, counts, full-text search (`q=`), and
//! the 400s that name what is wrong.

use crate::http_support;

use http_support::{Daemon, Kind};
use serde_json::json;

both!(
    views_are_served_as_each_caller_sees_them,
    typed_filters_refuse_what_does_not_parse,
    full_text_search_as_each_caller_may,
);

fn ids(r: &http_support::Resp) -> Vec<i64> {
    let mut v: Vec<i64> = r.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{r:?}"))
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    v.sort();
    v
}

async fn views_are_served_as_each_caller_sees_them(kind: Kind) {
    let d = Daemon::start(kind).await;
    let a = d.qp_lead().await.id();
    let b = d.qp_lead().await.id();
    let mi = d
        .post(
            "/v1/records",
            "qp-admin",
            json!({"workflow": "qpartner", "fields": {"area": "IT-LOMBARDIA", "name": "Milano",
                   "postal_code": "20121", "city": "Milano", "street": "Via Dante 1",
                   "email": "m@example.it", "phone": "0212345678"}}),
        )
        .await
        .id();
    // The views of the tenant, with where to read them.
    let l = d.get("/v1/views", "inst-a").await;
    assert_eq!(l.status, 200, "{l:?}");
    let names: Vec<&str> = l.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"available") && names.contains(&"my_requests"),
        "{names:?}"
    );
    let available = l.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "available")
        .unwrap();
    assert_eq!(available["href"], "/v1/views/qpartner/available");
    assert_eq!(available["states"], json!(["available", "assigned"]));

    // The pool of each installer's zone; the admin sees all three.
    let v = |who: &'static str, q: &'static str| {
        let d = &d;
        async move { d.get(&format!("/v1/views/qpartner/{q}"), who).await }
    };
    let r = v("inst-a", "available").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(ids(&r), [a, b]);
    assert_eq!(
        r.body["view"]["title"]
            .as_str()
            .map(|t| t.starts_with("Richieste")),
        Some(true)
    );
    let item = &r.body["items"][0];
    // The view's columns only, never a PII field the installer may not see.
    assert_eq!(item["fields"]["city"], "Roma");
    assert!(item["fields"].get("phone").is_none(), "{item}");
    assert!(item["fields"].get("area").is_none(), "not a column: {item}");
    assert_eq!(ids(&v("inst-mi", "available").await), [mi]);
    assert_eq!(ids(&v("qp-admin", "available").await), [a, b, mi]);

    // inst-a claims `a`: it leaves the pool, joins inst-a's requests (and
    // the representative's, who follows the area), not inst-b's.
    let r = d
        .post(
            &format!("/v1/records/{a}/transitions/claim"),
            "inst-a",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(ids(&v("inst-b", "available").await), [b]);
    let mine = v("inst-a", "my_requests").await;
    assert_eq!(ids(&mine), [a]);
    assert_eq!(mine.body["items"][0]["fields"]["name"], "Test1 ITroma");
    assert!(ids(&v("inst-b", "my_requests").await).is_empty());
    assert_eq!(ids(&v("rep-rm", "my_requests").await), [a]);
    assert_eq!(ids(&v("qp-admin", "my_requests").await), [a]);

    // The caller's own conditions narrow the view; counts count them.
    let r = d
        .get(
            "/v1/views/qpartner/available?field.city=prefix:Mil&count=true",
            "qp-admin",
        )
        .await;
    assert_eq!(ids(&r), [mi]);
    assert_eq!(r.body["count"], json!({"value": 1, "estimated": false}));
    let r = d
        .get("/v1/views/qpartner/available?state=claimed", "qp-admin")
        .await;
    assert_eq!(
        (r.status, ids(&r).len()),
        (200, 0),
        "states outside the view's: none"
    );
    // Pages of one, in the view's order (newest received first).
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let r = d
            .get(
                &format!("/v1/views/qpartner/all?limit=1{after}"),
                "qp-admin",
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        seen.extend(ids(&r));
        match r.body["next"].as_str() {
            Some(n) => after = format!("&after={n}"),
            None => break,
        }
    }
    assert_eq!(seen, [mi, b, a]);

    // Unknown views, and `workflow` given where the path names it.
    let r = v("qp-admin", "nope").await;
    assert_eq!((r.status, r.code()), (404, "E_VIEW_NOT_FOUND"));
    let r = d.get("/v1/views/nope/all", "qp-admin").await;
    assert_eq!((r.status, r.code()), (404, "E_VIEW_NOT_FOUND"));
    let r = d
        .get("/v1/views/qpartner/all?workflow=qpartner", "qp-admin")
        .await;
    assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"));
    // An installer may not filter the view on a PII field either.
    let r = d
        .get("/v1/views/qpartner/all?field.phone=prefix:0", "inst-a")
        .await;
    assert_eq!((r.status, r.code()), (403, "E_FORBIDDEN"));
    let _ = d.stop().await;
}

async fn typed_filters_refuse_what_does_not_parse(kind: Kind) {
    let d = Daemon::start(kind).await;
    let mut ids_ = Vec::new();
    for n in ["Rossi", "Verdi", "Bianchi"] {
        ids_.push(d.aslm_lead("admin", n).await.id());
    }
    let r = d
        .post(
            &format!("/v1/records/{}/transitions/log_contact_attempt", ids_[0]),
            "dealer-rm",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let list = |q: &'static str| {
        let d = &d;
        async move {
            d.get(&format!("/v1/records?workflow=aslm&{q}"), "admin")
                .await
        }
    };
    assert_eq!(ids(&list("field.attempts=gte:1").await), [ids_[0]]);
    assert_eq!(ids(&list("field.attempts=lt:1").await), [ids_[1], ids_[2]]);
    assert_eq!(
        ids(&list("field.attempts=in:0,7").await),
        [ids_[1], ids_[2]]
    );
    assert_eq!(
        ids(&list("field.last_name=in:Rossi,Bianchi").await),
        [ids_[0], ids_[2]]
    );
    assert_eq!(ids(&list("field.last_name=contains:ERD").await), [ids_[1]]);
    assert_eq!(ids(&list("filter=last_name:prefix:Bia").await), [ids_[2]]);
    assert_eq!(ids(&list("field.close_reason=empty").await).len(), 3);
    assert_eq!(
        ids(&list("created_at=gte:2000-01-01&created_at=lt:2999-01-01").await).len(),
        3
    );
    assert!(ids(&list("updated_at=lt:2000-01-01T00:00:00Z").await).is_empty());
    assert!(ids(&list("assignee=empty").await).is_empty());
    let r = list("count=true&limit=1").await;
    assert_eq!(r.body["count"], json!({"value": 3, "estimated": false}));
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    // Sorted by the number, not its text.
    let r = list("sort=-attempts").await;
    assert_eq!(r.body["items"][0]["id"], ids_[0]);
    // Refusals name the parameter and the field.
    for (q, field, says) in [
        (
            "field.attempts=gt:many",
            "attempts",
            "field.attempts: `many` is not a number",
        ),
        (
            "field.province=lt:MI",
            "province",
            "operator `lt` does not apply to a string",
        ),
        (
            "field.province=near:MI",
            "province",
            "unknown operator `near`",
        ),
        ("filter=attempts:in:1,x", "attempts", "`x` is not a number"),
        (
            "field.first_contact_attempt_at=gt:yesterday",
            "first_contact_attempt_at",
            "not an instant",
        ),
        ("field.nope=1", "nope", "unknown field `nope`"),
    ] {
        let r = list(q).await;
        assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{q}: {r:?}");
        assert_eq!(r.body["field"], field, "{q}: {r:?}");
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{q}: {detail}");
    }
    let r = list("created_at=soon").await;
    assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{r:?}");
    let r = list("count=maybe").await;
    assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{r:?}");
    let _ = d.stop().await;
}

/// `q=` on lists and views: words as prefixes, case and accents aside,
/// with counts and cursors bound to the search; `pii` fields (qpartner's
/// phone, street, email) searched for admin keys only, so an installer
/// never finds a record by a value it cannot see.
async fn full_text_search_as_each_caller_may(kind: Kind) {
    let d = Daemon::start(kind).await;
    let a = d.qp_lead().await.id();
    let mi = d
        .post(
            "/v1/records",
            "qp-admin",
            json!({"workflow": "qpartner", "fields": {"area": "IT-LOMBARDIA", "name": "Bottega Città",
                   "postal_code": "20121", "city": "Milano", "street": "Via Dante 1",
                   "email": "m@example.it", "phone": "02 1234 5678"}}),
        )
        .await
        .id();
    let get = |path: String, who: &'static str| {
        let d = &d;
        async move { d.get(&path, who).await }
    };
    let list = |q: &str, who: &'static str| get(format!("/v1/records?workflow=qpartner&{q}"), who);
    assert_eq!(ids(&list("q=itrom", "qp-admin").await), [a]);
    assert_eq!(ids(&list("q=bottega%20citta", "qp-admin").await), [mi]);
    assert_eq!(ids(&list("q=CITT%C3%80%20bott", "qp-admin").await), [mi]);
    let r = list("q=milano&count=true", "qp-admin").await;
    assert_eq!(
        (ids(&r), &r.body["count"]),
        (vec![mi], &json!({"value": 1, "estimated": false}))
    );
    // A pii phone: found by an admin key, in a list and in a view.
    assert_eq!(ids(&list("q=0212345", "qp-admin").await), [mi]);
    assert_eq!(ids(&list("q=02%201234", "qp-admin").await), [mi]);
    let view = |q: &str, who: &'static str| get(format!("/v1/views/qpartner/available?{q}"), who);
    assert_eq!(ids(&view("q=034114", "qp-admin").await), [a]);
    // The installer of Rome sees `a` and finds it by its name and city,
    // never by its phone or street (pii), nor Milan's record at all.
    assert_eq!(ids(&view("q=roma", "inst-a").await), [a]);
    assert_eq!(ids(&list("q=test1", "inst-a").await), [a]);
    for q in [
        "q=034114",
        "q=cialdini",
        "q=example",
        "q=milano",
        "q=bottega",
    ] {
        let r = list(q, "inst-a").await;
        assert_eq!((r.status, ids(&r).len()), (200, 0), "{q}: {r:?}");
    }
    // A cursor is bound to its search.
    let b = d.qp_lead().await.id();
    let r = list("q=roma&limit=1", "qp-admin").await;
    assert_eq!(ids(&r), [a]);
    let next = r.body["next"].as_str().unwrap().to_string();
    let r = list(&format!("q=roma&limit=1&after={next}"), "qp-admin").await;
    assert_eq!(ids(&r), [b]);
    let r = list(&format!("q=rom&limit=1&after={next}"), "qp-admin").await;
    assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{r:?}");
    // Refusals.
    for q in ["q=%20-%20", "q=a&q=b", "q="] {
        let r = list(q, "qp-admin").await;
        assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{q}: {r:?}");
    }
    let many = vec!["w"; 17].join("%20");
    let r = list(&format!("q={many}"), "qp-admin").await;
    assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{r:?}");
    let _ = d.stop().await;
}
