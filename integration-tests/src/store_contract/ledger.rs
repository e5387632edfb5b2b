//! The request ledger: claims, completions, releases and leases.

use super::*;

fn request_id(value: &str) -> RequestId {
    RequestId::parse(value).expect("valid request ID")
}

fn later(seconds: u64) -> Timestamp {
    NOW.saturating_add(std::time::Duration::from_secs(seconds))
}

/// A claim holds until its lease ends.
pub async fn a_new_request_is_claimed_and_a_second_claim_sees_it_in_progress(
    _: Store,
    ledger: Ledger,
) {
    let id = request_id("m-1");

    let first = ledger.claim(&id, NOW, later(60)).await.expect("claim");
    let second = ledger.claim(&id, later(1), later(61)).await.expect("claim");

    assert_eq!(first, Claim::Claimed);
    assert_eq!(second, Claim::InProgress { until: later(60) });
}

/// A completion is remembered until `keep_until`, and ignored after.
pub async fn a_completed_request_is_reported_completed_until_its_record_expires(
    _: Store,
    ledger: Ledger,
) {
    let id = request_id("m-1");
    ledger.claim(&id, NOW, later(60)).await.expect("claim");

    ledger.complete(&id, later(3_600)).await.expect("complete");

    assert_eq!(
        ledger
            .claim(&id, later(10), later(70))
            .await
            .expect("claim"),
        Claim::Completed
    );
    assert_eq!(
        ledger
            .claim(&id, later(3_600), later(3_660))
            .await
            .expect("claim"),
        Claim::Claimed,
        "an expired completion record must be ignored (TTL deletion is lazy)"
    );
}

/// A crashed delivery's claim does not block the request for ever.
pub async fn a_claim_whose_lease_ended_can_be_taken_over(_: Store, ledger: Ledger) {
    let id = request_id("m-1");
    ledger.claim(&id, NOW, later(60)).await.expect("claim");

    let takeover = ledger
        .claim(&id, later(60), later(120))
        .await
        .expect("claim");
    let third = ledger
        .claim(&id, later(61), later(121))
        .await
        .expect("claim");

    assert_eq!(takeover, Claim::Claimed);
    assert_eq!(third, Claim::InProgress { until: later(120) });
}

/// Release is idempotent and leaves completions alone.
pub async fn releasing_frees_a_claim_but_never_a_completion(_: Store, ledger: Ledger) {
    let released = request_id("released");
    let completed = request_id("completed");
    ledger
        .claim(&released, NOW, later(60))
        .await
        .expect("claim");
    ledger
        .claim(&completed, NOW, later(60))
        .await
        .expect("claim");
    ledger
        .complete(&completed, later(3_600))
        .await
        .expect("complete");

    ledger.release(&released, later(60)).await.expect("release");
    ledger
        .release(&released, later(60))
        .await
        .expect("release is idempotent");
    ledger
        .release(&completed, later(60))
        .await
        .expect("release");
    ledger
        .release(&request_id("never-seen"), later(60))
        .await
        .expect("release of an unknown request");

    assert_eq!(
        ledger
            .claim(&released, later(1), later(61))
            .await
            .expect("claim"),
        Claim::Claimed
    );
    assert_eq!(
        ledger
            .claim(&completed, later(1), later(61))
            .await
            .expect("claim"),
        Claim::Completed
    );
}

/// A late release by a holder whose lease ended leaves the new holder's claim alone.
pub async fn a_stale_release_never_drops_the_claim_that_took_over(_: Store, ledger: Ledger) {
    let id = request_id("m-1");
    ledger.claim(&id, NOW, later(60)).await.expect("claim");
    ledger
        .claim(&id, later(60), later(120))
        .await
        .expect("takeover");

    ledger
        .release(&id, later(60))
        .await
        .expect("the first holder's late release");

    assert_eq!(
        ledger
            .claim(&id, later(61), later(121))
            .await
            .expect("claim"),
        Claim::InProgress { until: later(120) }
    );
}

/// Claims are one conditional write: two deliveries never both push.
pub async fn of_concurrent_claims_of_one_request_exactly_one_wins(_: Store, ledger: Ledger) {
    let id = request_id("raced");

    let claims = futures::future::join_all((0..8).map(|_| {
        let ledger = Arc::clone(&ledger);
        let id = id.clone();
        async move { ledger.claim(&id, NOW, later(60)).await.expect("claim") }
    }))
    .await;

    let won = claims
        .iter()
        .filter(|claim| **claim == Claim::Claimed)
        .count();
    assert_eq!(won, 1, "{claims:?}");
    assert!(
        claims
            .iter()
            .all(|claim| matches!(claim, Claim::Claimed | Claim::InProgress { .. })),
        "{claims:?}"
    );
}

/// Ledger records live beside connections without being read as one.
pub async fn request_records_never_appear_in_an_audience(store: Store, ledger: Ledger) {
    store.save(&open("c1", "ana")).await.expect("save");
    ledger
        .claim(&request_id("m-1"), NOW, later(60))
        .await
        .expect("claim");
    ledger
        .complete(&request_id("m-2"), later(60))
        .await
        .expect("complete");

    let everyone = read_sorted(&store, Source::All(Segment::WHOLE), 10).await;

    assert_eq!(everyone, ["c1"]);
}
