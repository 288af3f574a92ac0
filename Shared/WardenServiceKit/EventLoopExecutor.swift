import NIOCore

/// Runs tasks that prefer it on one NIO event loop. A request handler whose statements go to a
/// pool on the same loop then writes each statement and resumes on its answer without handing over
/// to another thread: on the two-core machines Warden is measured on, each hand-over (a thread woken,
/// a context switch) costs more than the statement's own work.
package final class EventLoopExecutor: TaskExecutor {
    package let eventLoop: any EventLoop

    package init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        eventLoop.execute { job.runSynchronously(on: executor) }
    }
}
