import Testing

@testable import DemoSupport

/// Java properties files, as Sensei and Stardog read them.
@Suite struct JavaPropertiesTests {
    @Test func javaPropertiesFollowJavaRules() throws {
        let text = """
            # a comment
            ! another
            a=1
            b : two words
            c three
              d=continued \\
                line
            e=tab\\there\\u0041
            f\\=g=h
            a=last wins
            empty=
            """
        let values = try JavaProperties.parse(text)
        #expect(values["a"] == "last wins")
        #expect(values["b"] == "two words")
        #expect(values["c"] == "three")
        #expect(values["d"] == "continued line")
        #expect(values["e"] == "tab\there" + "A")
        #expect(values["f=g"] == "h")
        #expect(values["empty"] == "")
        #expect(throws: JavaProperties.ParseError.self) { try JavaProperties.parse("x=\\u12") }
    }
}
