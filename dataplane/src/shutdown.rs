//! A worker-local, one-shot broadcast signal: idle connections and accept loops wait on it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Fired once when the worker starts draining. Cloning is cheap (an `Rc`).
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Rc<Inner>,
}

#[derive(Default)]
struct Inner {
    fired: Cell<bool>,
    waiters: RefCell<Slots>,
}

/// A slab of wakers: a waiting future owns one slot and frees it when dropped.
#[derive(Default)]
struct Slots {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_fired(&self) -> bool {
        self.inner.fired.get()
    }

    /// Fires the signal and wakes every waiter.
    pub fn fire(&self) {
        if self.inner.fired.replace(true) {
            return;
        }
        let wakers: Vec<Waker> = {
            let mut slots = self.inner.waiters.borrow_mut();
            slots.wakers.iter_mut().filter_map(Option::take).collect()
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Resolves when the signal fires (at once if it already has).
    pub fn wait(&self) -> Wait {
        Wait {
            inner: self.inner.clone(),
            slot: None,
        }
    }
}

pub struct Wait {
    inner: Rc<Inner>,
    slot: Option<usize>,
}

impl Future for Wait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.fired.get() {
            return Poll::Ready(());
        }
        let inner = self.inner.clone();
        let mut slots = inner.waiters.borrow_mut();
        match self.slot {
            Some(i) => {
                if let Some(w) = slots.wakers.get_mut(i) {
                    *w = Some(cx.waker().clone());
                }
            }
            None => {
                let waker = Some(cx.waker().clone());
                let i = match slots.free.pop() {
                    Some(i) => {
                        slots.wakers[i] = waker;
                        i
                    }
                    None => {
                        slots.wakers.push(waker);
                        slots.wakers.len() - 1
                    }
                };
                self.slot = Some(i);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(i) = self.slot.take() {
            let mut slots = self.inner.waiters.borrow_mut();
            if let Some(w) = slots.wakers.get_mut(i) {
                *w = None;
                slots.free.push(i);
            }
        }
    }
}

/// Set when a stop signal arrives, before the request-accept grace period: `/ping` answers the
/// terminating status from then on, while requests are still accepted (as Traefik).
static TERMINATING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_terminating() {
    TERMINATING.store(true, std::sync::atomic::Ordering::SeqCst);
}

pub fn terminating() -> bool {
    TERMINATING.load(std::sync::atomic::Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_waiters_and_reuses_slots() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let s = Shutdown::new();
            for _ in 0..100 {
                let w = s.wait();
                let r = monoio::time::timeout(std::time::Duration::from_millis(1), w).await;
                assert!(r.is_err());
            }
            assert!(s.inner.waiters.borrow().wakers.len() <= 1);
            let s2 = s.clone();
            let h = monoio::spawn(async move { s2.wait().await });
            monoio::time::sleep(std::time::Duration::from_millis(5)).await;
            s.fire();
            h.await;
            assert!(s.is_fired());
            s.wait().await;
        });
    }
}
