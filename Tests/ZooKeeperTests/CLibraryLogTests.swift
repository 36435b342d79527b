import Logging
import Testing
@testable import ZooKeeper

@Suite struct CLibraryLogTests {
    @Test(arguments: [
        ("2026-11-21 07:23:05,216:20324(0x7f41):ZOO_ERROR@check_events@3011: Socket 127.0.0.1:2181 zk retcode=-4", Logger.Level.error),
        ("2026-11-21 07:23:05,216:20324(0x7f41):ZOO_WARN@zookeeper_interest@2280: Exceeded deadline", .warning),
        ("2026-11-21 07:23:05,216:20324(0x7f41):ZOO_INFO@check_events@2507: initiated connection", .info),
        ("2026-11-21 07:23:05,216:20324(0x7f41):ZOO_DEBUG@zookeeper_process@3260: Got ping response", .debug),
    ])
    func levelsAreReadFromTheCLine(_ line: String, _ level: Logger.Level) {
        #expect(CLibraryLog.level(of: line) == level)
    }
}
