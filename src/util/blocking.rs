//! Blocking work (sled, files, ZIP and JSON) off the async worker threads, with one rule
//! for a panic in it: the panic becomes an error value and a log line. It never unwinds
//! into the caller (a daemon task would die with it) and never turns into a silent
//! default (a failed read must not look like an empty archive).

/// Blocking work that panicked (or was cancelled because the runtime is stopping).
#[derive(Debug, Clone, thiserror::Error)]
#[error("internal error while {what}: {message}")]
pub struct Panicked {
    /// What the work was doing, in a few words ("reading the sync state").
    pub what: &'static str,
    /// The panic's message.
    pub message: String,
}

/// Runs `f` on tokio's blocking pool. `what` names the work for the error and the log.
pub async fn blocking<T, F>(what: &'static str, f: F) -> Result<T, Panicked>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        let message = panic_message_of(e);
        tracing::error!("internal error while {what}: {message}; the work was abandoned");
        Panicked { what, message }
    })
}

/// Why a task did not finish: its panic's message, or that it was cancelled.
pub fn panic_message_of(e: tokio::task::JoinError) -> String {
    if e.is_cancelled() {
        "cancelled: the runtime is shutting down".to_owned()
    } else {
        panic_message(e.into_panic())
    }
}

/// The text of a panic payload (`panic!` passes a `&str` or a `String`).
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "a panic without a message".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_an_error_value_not_an_unwind() {
        assert_eq!(blocking("adding", || 1 + 1).await.expect("no panic"), 2);
        let err = blocking("reading the sync state", || -> u32 { panic!("boom {}", 7) })
            .await
            .expect_err("the panic is an error");
        assert_eq!(err.what, "reading the sync state");
        assert_eq!(err.message, "boom 7");
        assert_eq!(
            err.to_string(),
            "internal error while reading the sync state: boom 7"
        );
        let err = blocking("x", || -> () { std::panic::panic_any(5u8) })
            .await
            .expect_err("panics");
        assert_eq!(err.message, "a panic without a message");
    }
}
