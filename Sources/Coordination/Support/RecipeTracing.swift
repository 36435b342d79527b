import Tracing

/// Runs a recipe's step (acquiring a lock, campaigning, joining a group) in a span named
/// `coordination.<recipe>.<step>` with the recipe's node, when a tracer is active; the
/// operations it makes are child spans.
func recipeSpan<R>(_ name: String, path: String, _ body: () async throws -> R) async throws -> R {
    guard !(InstrumentationSystem.instrument is NoOpInstrument) else { return try await body() }
    return try await withSpan("coordination.\(name)", ofKind: .internal) { span in
        span.attributes["coordination.path"] = path
        return try await body()
    }
}
