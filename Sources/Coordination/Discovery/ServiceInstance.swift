import Foundation
import ZooKeeper

/// One instance of a service, as `curator-x-discovery` describes it: the JSON document of its
/// node `<base path>/<service name>/<instance id>`, so Swift and Java services find each other.
///
/// ``curatorJSON`` writes what Curator 5.4's default `JsonInstanceSerializer` writes (its
/// "compatible" mode, without `enabled`), fields in its order:
/// `{"name":…,"id":…,"address":…,"port":…,"sslPort":…,"payload":…,"registrationTimeUTC":…,"serviceType":…,"uriSpec":…}`.
/// A disabled instance adds `"enabled":false` at the end, as Curator's non-compatible mode
/// writes it (the compatible mode cannot say it); Curator's readers take it in either mode.
public struct ServiceInstance: Sendable, Hashable {
    /// How the instance's node lives.
    public enum ServiceType: String, Sendable, Hashable, CaseIterable {
        /// Ephemeral: it goes with the registering session (and is published again on its next one).
        case dynamic = "DYNAMIC"
        /// Persistent.
        case `static` = "STATIC"
        /// Persistent.
        case permanent = "PERMANENT"
        /// Ephemeral sequential: the node is `<id><sequence>`.
        case dynamicSequential = "DYNAMIC_SEQUENTIAL"
    }

    /// A URI template: literal parts and `{variable}` parts (Curator's `UriSpec`).
    public struct URISpec: Sendable, Hashable {
        /// One part of the template.
        public struct Part: Sendable, Hashable {
            /// The literal text, or the variable's name.
            public var value: String
            /// Whether it is a variable.
            public var variable: Bool
            /// A part.
            public init(value: String, variable: Bool) {
                self.value = value
                self.variable = variable
            }
        }

        /// The parts in order.
        public var parts: [Part]

        /// Parses `{scheme}://{address}:{port}/x` into literal and variable parts.
        public init(_ template: String) {
            var parts: [Part] = []
            var current = ""
            var inVariable = false
            for character in template {
                if character == "{" || character == "}" {
                    if !current.isEmpty { parts.append(Part(value: current, variable: inVariable)) }
                    current = ""
                    inVariable = character == "{"
                } else {
                    current.append(character)
                }
            }
            if !current.isEmpty { parts.append(Part(value: current, variable: inVariable)) }
            self.parts = parts
        }

        /// A template of these parts.
        public init(parts: [Part]) {
            self.parts = parts
        }
    }

    /// The service's name.
    public var name: String
    /// The instance's id, unique within the service (a node name: no `/`).
    public var id: String
    /// Where it listens.
    public var address: String?
    /// Its port.
    public var port: Int?
    /// Its TLS port.
    public var sslPort: Int?
    /// What it tells its clients besides its address.
    public var payload: ServicePayload?
    /// When it registered, milliseconds since 1970 (UTC).
    public var registrationTimeUTC: Int64
    /// How its node lives.
    public var serviceType: ServiceType
    /// Its URI template.
    public var uriSpec: URISpec?
    /// Whether it takes requests (Curator's non-compatible documents carry it; `true` otherwise).
    /// ``curatorJSON`` writes it when it is `false`.
    public var enabled: Bool

    /// An instance registered now.
    public init(
        name: String, id: String = UUID().uuidString.lowercased(), address: String? = nil, port: Int? = nil, sslPort: Int? = nil,
        payload: ServicePayload? = nil, serviceType: ServiceType = .dynamic, uriSpec: URISpec? = nil,
        registrationTimeUTC: Int64 = Int64(Date().timeIntervalSince1970 * 1000), enabled: Bool = true
    ) {
        self.name = name
        self.id = id
        self.address = address
        self.port = port
        self.sslPort = sslPort
        self.payload = payload
        self.registrationTimeUTC = registrationTimeUTC
        self.serviceType = serviceType
        self.uriSpec = uriSpec
        self.enabled = enabled
    }

    /// The JSON document Curator writes for this instance.
    public var curatorJSON: String {
        func optional(_ value: Int?) -> String { value.map(String.init) ?? "null" }
        var text = "{\"name\":" + JSONText.quoted(name) + ",\"id\":" + JSONText.quoted(id)
        text += ",\"address\":" + (address.map(JSONText.quoted) ?? "null")
        text += ",\"port\":" + optional(port) + ",\"sslPort\":" + optional(sslPort)
        text += ",\"payload\":" + (payload?.curatorJSON ?? "null")
        text += ",\"registrationTimeUTC\":\(registrationTimeUTC),\"serviceType\":" + JSONText.quoted(serviceType.rawValue)
        if let uriSpec {
            let parts = uriSpec.parts.map { "{\"value\":" + JSONText.quoted($0.value) + ",\"variable\":\($0.variable)}" }
            text += ",\"uriSpec\":{\"parts\":[" + parts.joined(separator: ",") + "]}"
        } else {
            text += ",\"uriSpec\":null"
        }
        return text + (enabled ? "}" : ",\"enabled\":false}")
    }

    /// Reads an instance document (Curator's, in either serialisation mode).
    /// - Throws: `.marshallingError` naming `path` and the problem when it is not one.
    public init(curatorJSON bytes: [UInt8], path: String) throws(ZooKeeperError) {
        do {
            let document = try JSONDecoder().decode(Document.self, from: Data(bytes))
            guard let serviceType = ServiceType(rawValue: document.serviceType ?? "DYNAMIC") else {
                throw ServiceDocumentError(description: "unknown serviceType \(document.serviceType ?? "")")
            }
            self.init(
                name: document.name ?? "", id: document.id ?? "", address: document.address, port: document.port, sslPort: document.sslPort,
                payload: document.payload.flatMap { $0 == .null ? nil : ServicePayload(typedJSON: $0) }, serviceType: serviceType,
                uriSpec: document.uriSpec.map { URISpec(parts: $0.parts.map { URISpec.Part(value: $0.value, variable: $0.variable) }) },
                registrationTimeUTC: document.registrationTimeUTC ?? 0, enabled: document.enabled ?? true)
        } catch {
            throw ZooKeeperError(.marshallingError, path: path, message: "\(path) does not hold a service instance document: \(error)")
        }
    }

    /// Curator's document, every field optional as Jackson reads it.
    private struct Document: Decodable {
        struct Spec: Decodable {
            struct Part: Decodable {
                var value: String
                var variable: Bool
            }
            var parts: [Part]
        }
        var name: String?
        var id: String?
        var address: String?
        var port: Int?
        var sslPort: Int?
        var payload: ServicePayload?
        var registrationTimeUTC: Int64?
        var serviceType: String?
        var uriSpec: Spec?
        var enabled: Bool?
    }

    private struct ServiceDocumentError: Error, CustomStringConvertible {
        var description: String
    }
}
