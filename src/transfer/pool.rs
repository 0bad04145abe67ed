//! Parts in parallel: `concurrency` workers take part numbers off one queue
//! until it is empty, Ctrl-C asks them to stop, or one fails (the others
//! then finish the part they are on and stop too).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use super::Ctx;

/// Runs `each` on every number of `todo`. `each` returns `Ok(false)` to stop
/// every worker without an error (the download found the object changed).
pub async fn run<Fut>(ctx: &Ctx, todo: VecDeque<u64>, each: impl Fn(u64) -> Fut) -> anyhow::Result<()>
where
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let todo = Mutex::new(todo);
    // Scoped concurrency on this task: the workers borrow the caller's state.
    let workers = (0..ctx.concurrency).map(|_| worker(ctx, &todo, &each));
    futures_util::future::join_all(workers).await.into_iter().collect()
}

async fn worker<Fut>(ctx: &Ctx, todo: &Mutex<VecDeque<u64>>, each: &impl Fn(u64) -> Fut) -> anyhow::Result<()>
where
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let take = || todo.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
    let clear = || todo.lock().unwrap_or_else(PoisonError::into_inner).clear();
    while !ctx.stopping() {
        let Some(number) = take() else { return Ok(()) };
        if let Some(delay) = ctx.part_delay {
            tokio::time::sleep(delay).await;
        }
        match each(number).await {
            Ok(true) => {}
            Ok(false) => {
                clear();
                return Ok(());
            }
            Err(e) => {
                clear();
                return Err(e);
            }
        }
    }
    Ok(())
}
