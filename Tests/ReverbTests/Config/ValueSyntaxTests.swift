import Testing

@testable import Reverb

@Suite struct ValueSyntaxTests {
    @Test(arguments: [
        ("true", true), ("TRUE", true), ("(true)", true), ("1", true), ("yes", true), ("On", true),
        ("false", false), ("(False)", false), ("0", false), ("no", false), ("OFF", false),
    ])
    func booleans(text: String, expected: Bool) {
        #expect(ValueSyntax.boolean(text) == expected)
    }

    @Test(arguments: ["maybe", "", "2", "t", " true"])
    func notBooleans(text: String) {
        #expect(ValueSyntax.boolean(text) == nil)
    }

    @Test(arguments: [("8080", 8080), ("+5", 5), ("0", 0), ("-1", -1), ("007", 7)])
    func integers(text: String, expected: Int) {
        #expect(ValueSyntax.integer(text) == expected)
    }

    @Test(arguments: ["8080a", "1e3", "", "+", " 1", "1 ", "1.0", "99999999999999999999", "٣"])
    func notIntegers(text: String) {
        #expect(ValueSyntax.integer(text) == nil)
    }

    @Test(arguments: [("2", 2.0), ("0.5", 0.5), ("+1.25", 1.25), ("10", 10)])
    func seconds(text: String, expected: Double) {
        #expect(ValueSyntax.seconds(text) == expected)
    }

    @Test(arguments: ["2s", "0", "0.0", "-1", ".5", "5.", "1e3", "", "inf", "nan"])
    func notSeconds(text: String) {
        #expect(ValueSyntax.seconds(text) == nil)
    }

    @Test(arguments: [
        ("a.com, b.com", ["a.com", "b.com"]),
        (" *.example.com ,, x ,", ["*.example.com", "x"]),
        ("", [String]()),
        (",", [String]()),
        ("*", ["*"]),
    ])
    func lists(text: String, expected: [String]) {
        #expect(ValueSyntax.list(text) == expected)
    }

    @Test(arguments: [
        ("abc", JSONValue.string("abc")),
        ("\"quoted\"", .string("quoted")),
        ("'single'", .string("single")),
        ("(empty)", .string("")),
        ("null", .null), ("(NULL)", .null),
        ("true", .bool(true)), ("(true)", .bool(true)), ("False", .bool(false)), ("(false)", .bool(false)),
        ("\"mismatched'", .string("\"mismatched'")),
        ("empty", .string("empty")),
    ])
    func environmentTreatment(raw: String, expected: JSONValue) {
        #expect(EnvironmentValue.interpret(raw) == expected)
    }

    @Test(arguments: ["", "\"\"", "''"])
    func emptyMeansUnset(raw: String) {
        #expect(EnvironmentValue.interpret(raw) == nil)
    }
}
