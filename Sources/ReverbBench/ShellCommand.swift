import Foundation

/// A caller-given command line, run with `/bin/sh -c` (the fault a scenario injects).
///
/// Spawned with `posix_spawn` and reaped with `waitpid` on a thread of its own: Foundation's `Process`
/// learns of the exit through a descriptor the child inherits, so a command that leaves a daemon
/// behind (`redis-server --daemonize yes`) would never be seen to finish. NIO opens the bench's
/// sockets close-on-exec, so such a daemon holds none of them.
struct ShellCommand: Sendable {
    var command: String

    struct Outcome: Sendable {
        /// The exit status; 128 + the signal when killed; -1 when the shell could not be started.
        var status: Int32
        var startedAt: UInt64
        var finishedAt: UInt64
        var seconds: Double { Double(finishedAt - startedAt) / 1e9 }
    }

    /// Runs the command and waits for it to exit; its output goes to this process's.
    func run() async -> Outcome {
        let started = PayloadTimestamp.now()
        let command = self.command
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: Self.spawnAndWait(command)) }
        }
        return Outcome(status: status, startedAt: started, finishedAt: PayloadTimestamp.now())
    }

    private static func spawnAndWait(_ command: String) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let words: [String] = ["/bin/sh", "-c", command]
        let arguments: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for argument in arguments { free(argument) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/sh", &actions, nil, arguments, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { return -1 }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import (they are macros).
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }
}
