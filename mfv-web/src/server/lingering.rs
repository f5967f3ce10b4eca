//! A lingering close, as nginx does it: a connection closed with part of a request still
//! unread would be reset by the kernel, and a reset reaching a client that is still sending
//! (it writes its whole body before it reads, as most do) destroys the answer it has not yet
//! read. An early refusal (413 from the declared length, 401 before an upload) is exactly
//! such an answer. So closing the connection shuts the write side first, which sends the
//! answer's end, and then reads and drops what the client still sends, until it closes too
//! or [`Lingering::new`]'s time is up.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A stream whose shutdown lingers: see the module's documentation.
#[derive(Debug)]
pub struct Lingering<S> {
    stream: S,
    linger: Duration,
    closing: Closing,
}

/// Where the shutdown is.
#[derive(Debug)]
enum Closing {
    /// Not begun, or the write side is being shut.
    Open,
    /// The write side is shut; what arrives is read away until the deadline.
    Draining(Pin<Box<Sleep>>),
    /// The client closed too, or the time was up.
    Closed,
}

impl<S> Lingering<S> {
    /// `stream`, whose shutdown reads for at most `linger` after shutting its write side.
    pub fn new(stream: S, linger: Duration) -> Lingering<S> {
        Lingering {
            stream,
            linger,
            closing: Closing::Open,
        }
    }
}

impl<S: AsyncRead + Unpin> Lingering<S> {
    /// Reads and drops what arrives until the client closes its side or `deadline` passes.
    fn poll_drain(
        stream: &mut S,
        deadline: &mut Pin<Box<Sleep>>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let mut scratch = [0_u8; 8192];
        loop {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            let mut buffer = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut *stream).poll_read(cx, &mut buffer)) {
                Ok(()) if buffer.filled().is_empty() => return Poll::Ready(()),
                Ok(()) => {}
                Err(_) => return Poll::Ready(()),
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buffer)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, bytes)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.closing {
                Closing::Open => {
                    ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
                    this.closing = Closing::Draining(Box::pin(tokio::time::sleep(this.linger)));
                }
                Closing::Draining(deadline) => {
                    ready!(Self::poll_drain(&mut this.stream, deadline, cx));
                    this.closing = Closing::Closed;
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn shutdown_reads_until_the_peer_closes_and_the_peer_reads_the_answer() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut ours = Lingering::new(ours, Duration::from_secs(30));
        let peer = tokio::spawn(async move {
            theirs.write_all(&[b'x'; 4096]).await.unwrap();
            let mut answer = Vec::new();
            theirs.read_to_end(&mut answer).await.unwrap();
            answer
        });
        ours.write_all(b"refused").await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), ours.shutdown())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(peer.await.unwrap(), b"refused");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_gives_up_on_a_peer_that_keeps_sending_once_its_time_is_up() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut ours = Lingering::new(ours, Duration::from_secs(5));
        let _peer = tokio::spawn(async move {
            while theirs.write_all(b"more").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let started = tokio::time::Instant::now();
        ours.shutdown().await.unwrap();
        assert_eq!(started.elapsed().as_secs(), 5);
    }
}
