//! The outbox sweeper: only one API instance at a time sweeps, and a crashed holder's lease
//! passes to another instance.

use std::time::Duration;

use chat3_core::bus::Bus;
use chat3_core::outbox::{Sweeper, SweeperConfig};
use chat3_core::store::Store;
use chat3_tests::eventually;

fn sweeper(store: &Store, bus: &Bus, holder: &str, lease: Duration) -> Sweeper {
    Sweeper::new(
        store.clone(),
        bus.clone(),
        SweeperConfig {
            interval: Duration::from_millis(100),
            grace: Duration::from_secs(1),
            lease,
            holder: holder.to_owned(),
        },
    )
}

#[tokio::test]
async fn only_one_sweeper_holds_the_lease_until_it_expires() {
    let mongo = chat3_core::testing::mongo_args("lease");
    let store = Store::connect(&mongo)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bus = Bus::lazy(chat3_core::testing::amqp_args("lease"));
    let a = sweeper(&store, &bus, "instance-a", Duration::from_millis(600));
    let b = sweeper(&store, &bus, "instance-b", Duration::from_millis(600));

    assert!(a.acquire_lease().await.unwrap_or_else(|e| panic!("{e}")));
    assert!(!b.acquire_lease().await.unwrap_or_else(|e| panic!("{e}")));
    // The holder renews its own lease.
    assert!(a.acquire_lease().await.unwrap_or_else(|e| panic!("{e}")));
    assert!(!b.acquire_lease().await.unwrap_or_else(|e| panic!("{e}")));
    // "a" stops renewing (as if it crashed): "b" takes over once the lease has run out.
    eventually(Duration::from_secs(10), "b to take the lease", || async {
        b.acquire_lease().await.ok().filter(|got| *got)
    })
    .await;
    assert!(!a.acquire_lease().await.unwrap_or_else(|e| panic!("{e}")));
}
