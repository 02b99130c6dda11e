import NIOCore
import NIOEmbedded
import Testing

@testable import ConsentServer

/// The sweep that bounds the check routes' body reads (`BodyReadWatch`), on channels of its own.
@Suite struct BodyReadWatchTests {
    @Test func aSweepClosesOnlyTheReadsPastTheirDeadline() throws {
        let watch = BodyReadWatch()
        let late = EmbeddedChannel()
        let early = EmbeddedChannel()
        let done = EmbeddedChannel()
        for channel in [late, early, done] {
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        let lateId = watch.watch(late, for: .seconds(1))
        let earlyId = watch.watch(early, for: .seconds(60))
        let doneId = watch.watch(done, for: .seconds(1))
        #expect(watch.end(doneId) == false, "a read that ended in time is no longer watched")

        watch.sweep(now: .now + .seconds(2))
        #expect(!late.isActive, "past its deadline: closed")
        #expect(early.isActive && done.isActive)
        #expect(watch.end(lateId), "its request learns the sweep ended it")
        #expect(watch.end(earlyId) == false)
        #expect(watch.watching == 0)
        _ = try? early.finish()
        _ = try? done.finish()
    }
}
