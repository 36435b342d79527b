import Foundation
import ZooKeeperTesting

@testable import SenseiSearch

/// A generated corpus with a facetable schema (the shape of Sensei's cars test data).
struct Corpus {
    static let schemaJSON = """
        { "table": { "uid": "id", "columns": [
            {"name": "color", "type": "string"},
            {"name": "year", "type": "int"},
            {"name": "price", "type": "float"},
            {"name": "tags", "type": "string", "multi": true, "delimiter": ","},
            {"name": "category", "type": "string"},
            {"name": "contents", "type": "text", "index": "ANALYZED", "store": "NO"} ] },
          "facets": [
            {"name": "color", "type": "simple"},
            {"name": "year", "type": "range", "params": [
                {"name": "range", "value": "[1990 TO 1992]"}, {"name": "range", "value": "[1993 TO 1994]"},
                {"name": "range", "value": "[1995 TO 1999]"}, {"name": "range", "value": "[2000 TO *]"}]},
            {"name": "tags", "type": "multi"},
            {"name": "category", "type": "path", "params": [{"name": "separator", "value": "/"}]} ] }
        """
    static let schema = try! SearchSchema(json: Data(schemaJSON.utf8))
    static let colors = ["red", "blue", "green", "black", "white", "silver"]
    static let tags = ["cheap", "fast", "family", "electric", "classic", "rare"]
    static let categories = ["car/sedan", "car/coupe", "car/sedan/compact", "truck/pickup", "truck/van"]
    static let words = ["engine", "leather", "seats", "sunroof", "turbo", "quiet", "roomy", "sporty", "manual", "automatic", "clean", "mint"]

    struct Car {
        var id: Int
        var color: String
        var year: Int
        var price: Double
        var tags: [String]
        var category: String
        var contents: [String]

        var json: String {
            let text = contents.joined(separator: " ")
            return #"{"id":\#(id),"color":"\#(color)","year":\#(year),"price":\#(price),"tags":"\#(tags.joined(separator: ","))","category":"\#(category)","contents":"\#(text)"}"#
        }
    }

    var cars: [Car] = []

    init<G: RandomNumberGenerator>(count: Int, using generator: inout G) {
        for id in 0..<count {
            let tagCount = Int.random(in: 0...3, using: &generator)
            cars.append(Car(
                id: id, color: Self.colors.randomElement(using: &generator)!, year: Int.random(in: 1990...2005, using: &generator),
                price: Double(Int.random(in: 1000...50000, using: &generator)),
                tags: Array(Set((0..<tagCount).map { _ in Self.tags.randomElement(using: &generator)! })).sorted(),
                category: Self.categories.randomElement(using: &generator)!,
                contents: (0..<Int.random(in: 1...12, using: &generator)).map { _ in Self.words.randomElement(using: &generator)! }))
        }
    }

    func index(partitions: Set<Int>? = nil, partitionCount: Int = 1) throws -> PartitionIndex {
        let index = PartitionIndex(schema: Self.schema)
        for car in cars where partitions?.contains(car.id % partitionCount) ?? true {
            index.add(try SearchDocument(jsonLine: car.json, schema: Self.schema))
        }
        return index
    }
}
