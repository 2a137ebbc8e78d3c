//! The socket as hyper sees it: it tells the connection's [`Activity`] when bytes arrive (a
//! further request head has begun), and it replaces hyper's own answers to a request head
//! hyper could not parse with problem answers.
//!
//! Why rewrite bytes: hyper answers a malformed head itself (400 for a NUL or control
//! character in a header, 431 for a head past the buffer limit, 414 for a long URI), with an
//! empty body, before any service runs, and offers no hook to give that answer a body. Those
//! automatic answers are the only responses on this server with `content-length: 0` and one of
//! those statuses (every answer of ours has a problem body), so they are recognised exactly
//! and written as the documented problem instead.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::answers::Answers;
use super::registry::Activity;

pub struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
    answers: Arc<Answers>,
    /// What is left to write of a replacement answer.
    pending: Option<Bytes>,
}

impl<T> Tracked<T> {
    pub fn new(inner: T, activity: Arc<Activity>, answers: Arc<Answers>) -> Self {
        Tracked {
            inner,
            activity,
            answers,
            pending: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> Tracked<T> {
    /// Writes what is left of a replacement answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(rest) = &mut self.pending {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            rest.advance(n);
            if rest.is_empty() {
                self.pending = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Takes over `buf` if it is one of hyper's automatic error answers: says it is written,
    /// and writes the replacement instead.
    fn replace(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Option<Poll<io::Result<usize>>> {
        self.pending = Some(self.answers.for_hyper_head(buf)?);
        Some(match self.drain(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // The rest goes out on flush or shutdown, which hyper calls next.
            _ => Poll::Ready(Ok(buf.len())),
        })
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.activity.on_bytes();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(done) = self.replace(cx, buf) {
            return done;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        let mut non_empty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (non_empty.next(), non_empty.next())
            && let Some(done) = self.replace(cx, only)
        {
            return done;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
