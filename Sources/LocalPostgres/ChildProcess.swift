import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs a command to completion with posix_spawn and waitpid.
///
/// Not Foundation's `Process`: on Linux it learns of the child's exit through a descriptor the child inherits, and
/// the postmaster that `pg_ctl start` leaves running inherits it too, so the wait would never end. Here the child
/// gets only standard input (/dev/null) and a temporary file for its output; every other descriptor is closed.
enum ChildProcess {
    struct Failed: Error, CustomStringConvertible {
        let command: String
        let status: Int32
        let output: String
        var description: String { "`\(command)` exited with status \(status): \(output)" }
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], runAs user: String? = nil) throws -> String {
        let (status, output) = try runAllowingFailure(executable, arguments, runAs: user)
        guard status == 0 else {
            throw Failed(command: ([executable] + arguments).joined(separator: " "), status: status, output: output)
        }
        return output
    }

    static func runAllowingFailure(_ executable: String, _ arguments: [String], runAs user: String? = nil) throws
        -> (Int32, String)
    {
        let command =
            user.map { ["/usr/sbin/runuser", "-u", $0, "--", executable] + arguments } ?? [executable] + arguments
        // runuser keeps the caller's folder, which the postgres user may not be allowed to enter.
        let argv = ["/bin/sh", "-c", "cd / && exec \"$@\"", "sh"] + command
        markDescriptorsCloseOnExec()
        let outputPath = NSTemporaryDirectory() + "consentd-child-\(UUID().uuidString).log"
        defer { unlink(outputPath) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, &cArguments, environ)
        guard spawned == 0 else {
            throw Failed(command: argv.joined(separator: " "), status: -1, output: String(cString: strerror(spawned)))
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { break }
        }
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exitCode: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return (exitCode, output.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Our own descriptors (sockets, event fds) must not leak into the child, least of all into a postmaster
    /// that outlives it.
    static func markDescriptorsCloseOnExec() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for fd in entries.compactMap(Int32.init) where fd > 2 {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }
}
