import ConsentCore
import Crypto
import Foundation
import LocalPostgres
import Logging

/// `./.consentd/`: the dev cluster, and the master and signing keys kept between runs (files of mode 0600).
struct DevWorkspace {
    let directory: String

    init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Others may pass through (the postgres user must reach the cluster inside when we run as root) but not list.
        try FileManager.default.setAttributes([.posixPermissions: 0o711], ofItemAtPath: directory)
    }

    /// A 32-byte key stored as base64, created on first use.
    func key(named name: String) throws -> SecretBytes {
        let path = "\(directory)/\(name).key"
        if let text = try? String(contentsOfFile: path, encoding: .utf8),
            let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), data.count == 32
        {
            return SecretBytes(Array(data))
        }
        let key = SecretBytes.random32()
        guard
            FileManager.default.createFile(
                atPath: path, contents: Data((key.base64 + "\n").utf8), attributes: [.posixPermissions: 0o600])
        else { throw CommandFailure("cannot write \(path)") }
        return key
    }

    /// The cluster under `.consentd/postgres`. When the work tree sits where the postgres user cannot reach
    /// (a root-owned home folder, as root), the cluster lives in /var/tmp and `.consentd/postgres` links to it.
    func cluster() throws -> LocalCluster {
        let inside = "\(directory)/postgres"
        do {
            return try LocalCluster(baseDirectory: inside)
        } catch let error as LocalClusterError where error.isUnreachable {
            let digest = SHA256.hash(data: Array(directory.utf8)).hexString.prefix(12)
            let outside = "/var/tmp/consentd-dev-\(digest)"
            // Replace a stale link or the empty folders the failed attempt made, never a cluster: that is data.
            let fileManager = FileManager.default
            guard !fileManager.fileExists(atPath: inside + "/data/PG_VERSION") else {
                throw CommandFailure(
                    "\(inside) holds a PostgreSQL cluster but the postgres user cannot reach it (\(error)); move the "
                        + "work tree somewhere the postgres user can enter, or move that folder away")
            }
            try? fileManager.removeItem(atPath: inside)
            try fileManager.createSymbolicLink(atPath: inside, withDestinationPath: outside)
            return try LocalCluster(baseDirectory: outside)
        }
    }
}
