//! The one builder call, for single executors and pools.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use glommio::{
    ExecutorJoinHandle, LocalExecutor, LocalExecutorBuilder, LocalExecutorPoolBuilder,
    PoolThreadHandles,
};
use rseq_slice_core::runtime::{RuntimeThread, SliceMetrics};

use rseq_slice_core::runtime::Hook;

use crate::config::SliceConfig;
use crate::error::{StartError, check_memlock};

/// Adds the slice extension to a glommio builder: [`LocalExecutorBuilder`]
/// becomes a [`SliceExecutorBuilder`], [`LocalExecutorPoolBuilder`] a
/// [`SlicePoolBuilder`]. Call it after your other builder settings.
pub trait BuilderExt: Sized {
    /// The builder that registers each executor thread.
    type Sliced;

    /// [`with_slice_config`](BuilderExt::with_slice_config) with the defaults.
    fn with_slice_extension(self) -> Self::Sliced {
        self.with_slice_config(SliceConfig::new())
    }

    /// Register and enable the slice extension on every executor thread,
    /// before the executor's first future runs, and record its metrics in
    /// `cfg`'s [`SliceMetrics`].
    fn with_slice_config(self, cfg: SliceConfig) -> Self::Sliced;
}

impl BuilderExt for LocalExecutorBuilder {
    type Sliced = SliceExecutorBuilder;

    fn with_slice_config(self, cfg: SliceConfig) -> SliceExecutorBuilder {
        SliceExecutorBuilder { inner: self, cfg }
    }
}

impl BuilderExt for LocalExecutorPoolBuilder {
    type Sliced = SlicePoolBuilder;

    fn with_slice_config(self, cfg: SliceConfig) -> SlicePoolBuilder {
        SlicePoolBuilder { inner: self, cfg }
    }
}

/// A [`LocalExecutorBuilder`] whose executor thread uses the slice extension.
#[derive(Debug)]
pub struct SliceExecutorBuilder {
    inner: LocalExecutorBuilder,
    cfg: SliceConfig,
}

impl SliceExecutorBuilder {
    /// The executor's metrics (a handle; clone it freely).
    pub fn metrics(&self) -> SliceMetrics {
        self.cfg.metrics()
    }

    /// [`LocalExecutorBuilder::spawn`]: a new thread that registers and
    /// enables the slice extension, then makes the executor and runs
    /// `fut_gen()` on it.
    ///
    /// Fails at once with [`StartError::MemlockTooLow`] where glommio would
    /// refuse to start inside the thread.
    pub fn spawn<G, F, T>(self, fut_gen: G) -> Result<ExecutorJoinHandle<T>, StartError>
    where
        G: FnOnce() -> F + Send + 'static,
        F: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        check_memlock()?;
        let cfg = self.cfg;
        Ok(self.inner.spawn(move || on_executor(&cfg, fut_gen))?)
    }

    /// [`LocalExecutorBuilder::make`]: an executor on the calling thread,
    /// which is registered and enabled here. The thread's metrics are final
    /// when the returned executor is dropped. Make one such executor per
    /// thread at a time.
    pub fn make(self) -> Result<SliceExecutor, StartError> {
        check_memlock()?;
        let inner = self.inner.make()?;
        Ok(SliceExecutor {
            inner,
            _thread: ExecutorThread::start(&self.cfg),
        })
    }
}

/// A [`LocalExecutorPoolBuilder`] whose executor threads use the slice
/// extension.
#[derive(Debug)]
pub struct SlicePoolBuilder {
    inner: LocalExecutorPoolBuilder,
    cfg: SliceConfig,
}

impl SlicePoolBuilder {
    /// The pool's per-executor metrics (a handle; clone it freely).
    pub fn metrics(&self) -> SliceMetrics {
        self.cfg.metrics()
    }

    /// [`LocalExecutorPoolBuilder::on_all_shards`]: one executor thread per
    /// placement, each registered and enabled before its `fut_gen()` runs.
    ///
    /// Fails at once with [`StartError::MemlockTooLow`] where glommio would
    /// refuse to start inside the threads.
    pub fn on_all_shards<G, F, T>(self, fut_gen: G) -> Result<PoolThreadHandles<T>, StartError>
    where
        G: FnOnce() -> F + Clone + Send + 'static,
        F: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        check_memlock()?;
        let cfg = self.cfg;
        Ok(self
            .inner
            .on_all_shards(move || on_executor(&cfg, fut_gen))?)
    }
}

/// An executor made on the calling thread by [`SliceExecutorBuilder::make`].
/// Use it as a [`LocalExecutor`] (`run`, `id`, ...).
#[derive(Debug)]
pub struct SliceExecutor {
    inner: LocalExecutor,
    _thread: ExecutorThread,
}

impl Deref for SliceExecutor {
    type Target = LocalExecutor;

    fn deref(&self) -> &LocalExecutor {
        &self.inner
    }
}

/// The executor thread's handle in the metrics, started on creation, final
/// on drop (after the user's stop hook, even if it panics), on the same
/// thread.
struct ExecutorThread {
    on_stop: Option<Hook>,
    thread: RuntimeThread,
}

impl ExecutorThread {
    fn start(cfg: &SliceConfig) -> ExecutorThread {
        // Err(reason): the executor runs on with near-free guards; with
        // `tracing` the reason is logged once.
        let _ = rseq_slice_core::diagnostics::init_with(cfg.thread.enable_via);
        let thread = RuntimeThread::start(&cfg.thread.metrics);
        if let Some(f) = &cfg.thread.on_thread_start {
            f();
        }
        ExecutorThread {
            on_stop: cfg.thread.on_thread_stop.clone(),
            thread,
        }
    }
}

impl Drop for ExecutorThread {
    fn drop(&mut self) {
        self.thread.close_section();
        if let Some(f) = self.on_stop.take() {
            f();
        }
        // `thread` drops next, even if `f` panicked: final counters, entry
        // stopped.
    }
}

impl std::fmt::Debug for ExecutorThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorThread")
            .field("thread", &self.thread)
            .field("on_stop", &self.on_stop.is_some())
            .finish()
    }
}

/// Runs on the executor thread, inside glommio's first poll, before the
/// user's generator.
fn on_executor<G, F>(cfg: &SliceConfig, fut_gen: G) -> OnExecutor<F>
where
    G: FnOnce() -> F,
{
    let thread = ExecutorThread::start(cfg);
    OnExecutor {
        fut: fut_gen(),
        thread,
    }
}

pin_project_lite::pin_project! {
    /// The executor's main future: at the end of each of its polls (glommio
    /// has no park hook; no other task runs then) the thread goes idle for
    /// the adapter: counters published, grants reported, guards left open
    /// found ([`RuntimeThread::idle`]). The final counters when it is dropped.
    struct OnExecutor<F> {
        #[pin]
        fut: F,
        thread: ExecutorThread,
    }
}

impl<F: Future> Future for OnExecutor<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let out = this.fut.poll(cx);
        this.thread.thread.idle();
        out
    }
}
