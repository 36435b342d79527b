import Foundation
import Testing

@testable import SequinsKV

/// goforit's flag file as sequins reads it.
@Suite struct FeatureFlagsTests {
    func flags(_ json: String) throws -> FeatureFlags { try FeatureFlags(json: Data(json.utf8)) }

    @Test func theFileGoforitWrites() throws {
        let parsed = try flags(#"{"flags": [{"Name": "sequins.prevent_download.sequins", "Rate": 1}, {"Name": "other", "Rate": 0.25}], "updated": 1519247256.06}"#)
        #expect(parsed.rates == ["sequins.prevent_download.sequins": 1, "other": 0.25])
        #expect(parsed.isEnabled("sequins.prevent_download.sequins", random: 0.999))
        #expect(!parsed.isEnabled("other", random: 0.25) && parsed.isEnabled("other", random: 0.2499))
        #expect(!parsed.isEnabled("absent", random: 0))
    }

    @Test func keysMatchInAnyCaseUnknownKeysAreIgnoredAndTheLastDuplicateWins() throws {
        let parsed = try flags(#"{"FLAGS": [{"name": "a", "rate": 0, "note": "x"}, {"NAME": "a", "RATE": 1}], "extra": true}"#)
        #expect(parsed.rates == ["a": 1])
        #expect(try flags(#"{"updated": 1}"#).rates.isEmpty)
    }

    @Test func flagNamesCarryTheClusterName() {
        #expect(FeatureFlags.name(FeatureFlags.preventDownload, clusterName: "sequins") == "sequins.prevent_download.sequins")
        #expect(FeatureFlags.name(FeatureFlags.preventDownload, clusterName: "") == "sequins.prevent_download")
    }

    @Test(arguments: [
        ("not json", "not JSON"), ("[1]", "top level"), (#"{"flags": 3}"#, "\"flags\" must be an array"),
        (#"{"flags": [3]}"#, "flags[0] must be an object"), (#"{"flags": [{"Name": 4}]}"#, "flags[0].Name"),
        (#"{"flags": [{"Name": "a", "Rate": "1"}]}"#, "flags[0].Rate must be a number"),
    ])
    func aBadFileNamesTheProblem(_ json: String, _ expected: String) {
        let error = #expect(throws: FlagFileError.self) { _ = try flags(json) }
        #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
    }
}
