//! Running a client of mfv-net (DHCP, SNTP) while handing on the events it sends on its
//! channel, so its events reach their reader in order, the last ones included.

use std::future::Future;

use tokio::sync::mpsc::UnboundedReceiver;

/// Drives `run` to its end while passing each event received on `events` to `forward`; the
/// events sent just before the end are passed on before the result is returned.
pub(crate) async fn run_forwarding<T, E>(
    run: impl Future<Output = T>,
    events: &mut UnboundedReceiver<E>,
    mut forward: impl FnMut(E),
) -> T {
    tokio::pin!(run);
    let ended = loop {
        tokio::select! {
            ended = &mut run => break ended,
            Some(event) = events.recv() => forward(event),
        }
    };
    while let Ok(event) = events.try_recv() {
        forward(event);
    }
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_sent_just_before_the_end_are_forwarded_too() {
        let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
        let run = async move {
            for event in 1..=3 {
                sender.send(event).unwrap();
            }
            "ended"
        };
        let mut forwarded = Vec::new();
        let ended = run_forwarding(run, &mut events, |event| forwarded.push(event)).await;
        assert_eq!((ended, forwarded), ("ended", vec![1, 2, 3]));
    }
}
