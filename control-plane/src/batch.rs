//! Group commit: whoever proposes (a replica's proposer, a node's REGISTER batcher)
//! keeps a bounded number of batches in flight; while that many wait for their
//! commit, new work queues up and leaves together as the next batch.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// The next batch: waits for the first item and for a free in-flight slot, then takes
/// whatever else is queued, up to `max_weight` (by `weight`, at least one item).
/// Hold the permit until the batch is committed. `None` when the queue is closed.
pub async fn next_batch<T>(
    rx: &mut mpsc::Receiver<T>,
    in_flight: &Arc<Semaphore>,
    max_weight: usize,
    weight: impl Fn(&T) -> usize,
) -> Option<(Vec<T>, OwnedSemaphorePermit)> {
    let first = rx.recv().await?;
    let permit = in_flight.clone().acquire_owned().await.ok()?;
    let mut total = weight(&first);
    let mut batch = vec![first];
    while total < max_weight {
        match rx.try_recv() {
            Ok(item) => {
                total += weight(&item);
                batch.push(item);
            }
            Err(_) => break,
        }
    }
    Some((batch, permit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn takes_what_is_queued_up_to_the_weight() {
        let (tx, mut rx) = mpsc::channel(16);
        for n in [2, 2, 2, 2] {
            tx.send(n).await.unwrap();
        }
        let permits = Arc::new(Semaphore::new(1));
        let (batch, permit) = next_batch(&mut rx, &permits, 5, |n| *n).await.unwrap();
        assert_eq!(batch, vec![2, 2, 2]);
        // The only slot is taken until the batch is done.
        assert_eq!(permits.available_permits(), 0);
        drop(permit);
        let (batch, _permit) = next_batch(&mut rx, &permits, 5, |n| *n).await.unwrap();
        assert_eq!(batch, vec![2]);
        drop(tx);
        assert!(next_batch(&mut rx, &permits, 5, |n| *n).await.is_none());
    }
}
