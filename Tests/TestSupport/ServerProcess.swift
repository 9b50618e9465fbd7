// A server program a test starts and stops: spawned with posix_spawn and reaped with waitpid (Foundation's
// `Process` can miss a child's exit and wait forever), its output sent to a log file, killed when released.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A running server process, killed (SIGKILL) and reaped when this object goes away.
public final class ServerProcess: @unchecked Sendable {
    // Invariant: `pid` changes only in `hasExited()` and `deinit`, on the owning test's thread.
    private var pid: pid_t = 0

    /// Starts `arguments[0]` with the rest as its arguments, standard output and error into `log`.
    public init(_ arguments: [String], log: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        guard posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ) == 0 else {
            throw NginxError(message: "cannot start \(arguments[0])")
        }
    }

    /// Whether the process has ended (it is reaped then).
    public func hasExited() -> Bool {
        guard pid > 0 else { return true }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            pid = 0
            return true
        }
        return false
    }

    deinit {
        if pid > 0 {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }
}
