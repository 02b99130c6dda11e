/// Who runs the next group of writes, and which writes it holds: the state of a group commit, apart from its I/O
/// (`GroupCommit` runs it; tests drive it directly).
///
/// A write that arrives while fewer than `concurrentGroups` groups are running leads a group at once: it takes
/// everything queued, itself included, and runs it. A write that arrives while they all run waits in the queue.
/// When a group finishes, the queue's oldest write leads the next group, again taking everything queued. So no
/// write waits for a timer, a lone write runs alone, and under load the groups grow with the queue: as many writes
/// share one statement as arrived during the statements before it. The leader is always one of its group's own
/// writes, so every group is run by a request that is waiting for it anyway.
struct GroupCommitQueue<Entry> {
    /// At most this many writes share one group.
    let largestGroup: Int
    /// At most this many groups run at once (per queue).
    let concurrentGroups: Int
    private(set) var queued: [Entry] = []
    private(set) var running = 0

    init(largestGroup: Int, concurrentGroups: Int) {
        self.largestGroup = max(1, largestGroup)
        self.concurrentGroups = max(1, concurrentGroups)
    }

    enum Arrival {
        /// Run this group (the arriving entry is its first).
        case lead([Entry])
        /// Wait: a running group's leader will answer, or hand this entry the lead.
        case wait
    }

    mutating func arrive(_ entry: Entry) -> Arrival {
        queued.append(entry)
        guard running < concurrentGroups else { return .wait }
        running += 1
        return .lead(takeGroup())
    }

    enum Finish {
        /// The first entry of this group leads it.
        case handOver([Entry])
        case idle
    }

    /// A group has finished and its writes are answered.
    mutating func finished() -> Finish {
        guard !queued.isEmpty else {
            running = max(0, running - 1)
            return .idle
        }
        return .handOver(takeGroup())
    }

    private mutating func takeGroup() -> [Entry] {
        let count = min(largestGroup, queued.count)
        let group = Array(queued.prefix(count))
        queued.removeFirst(count)
        return group
    }
}
