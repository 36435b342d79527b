import Testing
import ZooKeeperTesting
@testable import ZooKeeper

@Suite struct ZooKeeperPathTests {
    @Test(arguments: ["/", "/a", "/a/b", "/a-b_c.d", "/zookeeper", "/a/.b", "/a/b..", "/ü", "/a/...", "/x1/y2/z3"])
    func validPathsPass(_ path: String) throws {
        try ZooKeeperPath.validate(path)
    }

    @Test(arguments: [
        ("", "empty"), ("a", "start with /"), ("/a/", "end with /"), ("//a", "empty node name"),
        ("/a//b", "empty node name"), ("/a/./b", "relative"), ("/a/..", "relative"), ("/.", "relative"),
        ("/a\u{0}b", "null"), ("/a\u{1}b", "U+1"), ("/a\u{7F}", "U+7F"), ("/a\u{FFF5}", "U+FFF5"),
        ("/app/\u{1F680}", "U+1F680"),  // past U+FFFF: a surrogate pair to the server, which refuses it
    ])
    func invalidPathsNameTheProblem(_ path: String, _ problem: String) {
        #expect(throws: ZooKeeperError.self) { try ZooKeeperPath.validate(path) }
        do {
            try ZooKeeperPath.validate(path)
        } catch {
            #expect(error.code == .invalidPath)
            #expect(error.message.contains(problem), "\(error.message)")
        }
    }

    @Test func sequentialPathsMayEndWithSlash() throws {
        try ZooKeeperPath.validate("/locks/", isSequential: true)
        #expect(throws: ZooKeeperError.self) { try ZooKeeperPath.validate("/locks/") }
    }

    @Test func randomPathsBuiltFromValidNamesAreValidAndRoundTrip() throws {
        var generator = SeededRandomNumberGenerator(seed: 0x296562ab)
        let alphabet = Array("abcXYZ019-_.:@é")
        for _ in 0..<2000 {
            let depth = Int.random(in: 1...6, using: &generator)
            var names: [String] = []
            for _ in 0..<depth {
                var name = ""
                repeat {
                    name = String((0..<Int.random(in: 1...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
                } while name == "." || name == ".."
                names.append(name)
            }
            let path = "/" + names.joined(separator: "/")
            try ZooKeeperPath.validate(path)
            #expect(ZooKeeperPath.name(of: path) == names.last)
            #expect(ZooKeeperPath.ancestors(of: path).count == depth - 1)
            if depth > 1 {
                #expect(ZooKeeperPath.join(ZooKeeperPath.parent(of: path)!, names.last!) == path)
            } else {
                #expect(ZooKeeperPath.parent(of: path) == "/")
            }
        }
    }

    /// The allocation-free ASCII check and the full check agree on random strings.
    @Test func fastCheckAgreesWithTheFullCheck() {
        var generator = SeededRandomNumberGenerator(seed: 0xb06c3311)
        let alphabet: [Character] = ["/", "/", "/", ".", ".", "a", "b", " ", "\u{1}", "é", "\u{7F}"]
        for _ in 0..<20000 {
            let path = String((0..<Int.random(in: 0...9, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            let full = ZooKeeperPath.problemInScalars(of: path)
            if ZooKeeperPath.isValidPrintableASCII(path) {
                #expect(full == nil, "fast check accepted \(path.debugDescription): \(full ?? "")")
            }
            #expect((ZooKeeperPath.problem(in: path) == nil) == (full == nil), "\(path.debugDescription)")
        }
    }

    @Test func ancestorsAreOutermostFirst() {
        #expect(ZooKeeperPath.ancestors(of: "/a/b/c") == ["/a", "/a/b"])
        #expect(ZooKeeperPath.ancestors(of: "/a") == [])
        #expect(ZooKeeperPath.parent(of: "/") == nil)
    }
}

@Suite struct ConnectStringTests {
    @Test func parsesHostsPortsAndChroot() throws {
        let parsed = try ConnectString("h1:2181,h2:2182,[::1]:2183/app/root")
        #expect(parsed.servers == [.init(host: "h1", port: 2181), .init(host: "h2", port: 2182), .init(host: "::1", port: 2183)])
        #expect(parsed.chroot == "/app/root")
        #expect(parsed.description == "h1:2181,h2:2182,[::1]:2183/app/root")
    }

    @Test func defaultsThePortAndIgnoresARootChroot() throws {
        let parsed = try ConnectString("zk.example.org/")
        #expect(parsed.servers == [.init(host: "zk.example.org", port: 2181)])
        #expect(parsed.chroot == nil)
    }

    @Test(arguments: [
        ("", "empty"), ("host:", "port"), ("host:0", "port"), ("host:70000", "port"), ("host:abc", "port"),
        (",host:1", "empty server"), ("h1:1,,h2:2", "empty server"), (":2181", "missing host"),
        ("host:1/bad//chroot", "chroot"), ("a:b:c", "more than one"), ("[::1:2181", "unterminated"),
        ("ho st:1", "characters"),
    ])
    func malformedConnectStringsNameTheProblem(_ text: String, _ problem: String) {
        do {
            _ = try ConnectString(text)
            Issue.record("\(text) was accepted")
        } catch {
            #expect(error.code == .invalidConnectString)
            #expect(error.message.contains(problem), "\(error.message)")
        }
    }

    @Test func clientRefusesAMalformedConnectString() {
        #expect(throws: ZooKeeperError.self) { try ZooKeeperClient(connectString: "localhost:99999") }
    }
}

@Suite struct ACLTests {
    @Test func digestIDIsBase64OfSHA1() {
        // base64(sha1("super:secret")), as `openssl dgst -binary -sha1 | base64` prints it.
        #expect(ACL.digestID(user: "super", password: "secret") == "super:lK75jTNcA+U9vtVEw5vB51mj/w4=")
        #expect(ACL.digest(user: "u", password: "p").scheme == "digest")
    }
}
