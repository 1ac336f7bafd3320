//! Independent pieces of work (unpacking packages, writing layers) spread
//! over a fixed number of threads. Each piece produces its own bytes on
//! its own thread, so the output never depends on how many threads ran or
//! which finished first: only the results' order is decided here, and it
//! is the items' order.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

/// Runs `work` on every item with up to `jobs` threads and returns the
/// results in item order. Items start in the order of their `weight`,
/// heaviest first, which keeps the threads evenly loaded when a few items
/// dominate. After a failure no new item starts, and the error of the
/// lowest-numbered item that failed is returned.
pub fn map<T, R, E>(
    items: &[T],
    jobs: usize,
    weight: impl Fn(&T) -> u64,
    work: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let workers = jobs.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(&work).collect();
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    // Stable: equal weights start in item order.
    order.sort_by_key(|&i| std::cmp::Reverse(weight(&items[i])));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R, E>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while !failed.load(Ordering::SeqCst) {
                    let Some(&i) = order.get(next.fetch_add(1, Ordering::SeqCst)) else {
                        break;
                    };
                    let result = work(&items[i]);
                    if result.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    results.lock().expect("no panics under lock")[i] = Some(result);
                }
            });
        }
    });
    let results = results.into_inner().expect("workers joined");
    let mut out = Vec::with_capacity(items.len());
    let mut first_error = None;
    for r in results {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_item_order_for_any_thread_count() {
        let items: Vec<u64> = (0..50).collect();
        for jobs in [1, 2, 7, 100] {
            let out: Result<Vec<u64>, ()> = map(&items, jobs, |i| i % 7, |i| Ok(i * 3));
            assert_eq!(
                out.unwrap(),
                items.iter().map(|i| i * 3).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn the_lowest_failed_item_is_reported() {
        let items: Vec<u64> = (0..20).collect();
        for jobs in [1, 3] {
            let out = map(
                &items,
                jobs,
                |_| 0,
                |&i| if i >= 5 { Err(i) } else { Ok(i) },
            );
            assert_eq!(out.unwrap_err(), 5);
        }
    }
}
