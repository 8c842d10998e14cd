/// The order in which dirty pages may reach the disk. A split logged as `PageChange.move`
/// makes its new page from the old page's cells; redo can rebuild the new page only from the
/// old page as it was before the split, so the new page must be durable no later than any
/// later version of the old page (ESE kept the same order with buffer dependencies).
extension PageCache {
    /// `target` was made from `source`'s cells by a split logged as `PageChange.move`: redo
    /// can rebuild `target` only from `source` as it was before the split, so `target` must
    /// be durable no later than any version of `source` written after it. From now on
    /// `source` is written only in the batch of `target`'s next write, or after it
    /// (`writeBatches`), and that write puts a copy of `target` in the doublewrite file,
    /// durable before any page of the batch is written in place.
    func splitMoved(from source: PageFrame, to target: PageFrame) {
        source.splitTargets.append(target)
        target.needsFreshCopy = true
    }

    /// Writes `frames` back with the split targets they wait on, in as many batches as that
    /// takes (`writeBatches`); each is clean afterwards.
    func write(_ frames: [PageFrame]) throws {
        for batch in writeBatches(frames, limit: batchSize) {
            try writeBack(batch)
            for g in batch { g.markWritten() }
        }
    }

    /// `frames` and the dirty split targets they wait on (and those these wait on), in
    /// batches of at most `limit` pages where a page's targets come in its batch or an
    /// earlier one. A page and all it waits on stay in one batch unless that is more than
    /// `limit` pages; then they are cut with the targets first (a cycle — a page split into a
    /// page that later split back into it before either was written — is only whole when
    /// it fits one batch).
    func writeBatches(_ frames: [PageFrame], limit: Int) -> [[PageFrame]] {
        var seen = Set<ObjectIdentifier>()
        var batches: [[PageFrame]] = []
        var current: [PageFrame] = []
        for f in frames where !seen.contains(ObjectIdentifier(f)) {
            let group = Self.targetsFirst(f, &seen)
            if !current.isEmpty && current.count + group.count > limit {
                batches.append(current)
                current = []
            }
            for g in group {
                if current.count == limit {
                    batches.append(current)
                    current = []
                }
                current.append(g)
            }
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }

    /// `f` after the dirty split targets it waits on, each after its own (post-order,
    /// without recursion: a chain can be long).
    private static func targetsFirst(_ f: PageFrame, _ seen: inout Set<ObjectIdentifier>) -> [PageFrame] {
        var out: [PageFrame] = []
        var stack: [(frame: PageFrame, next: Int)] = [(f, 0)]
        seen.insert(ObjectIdentifier(f))
        while !stack.isEmpty {
            let (g, i) = stack[stack.count - 1]
            if i < g.splitTargets.count {
                stack[stack.count - 1].next += 1
                let t = g.splitTargets[i]
                if t.dirty && !seen.contains(ObjectIdentifier(t)) {
                    seen.insert(ObjectIdentifier(t))
                    stack.append((t, 0))
                }
            } else {
                out.append(g)
                stack.removeLast()
            }
        }
        return out
    }

    /// True if `f` waits on a split target (directly or through others) that is pinned: one
    /// the open transaction holds has bytes not yet logged, so neither can be written now.
    /// (A target the open transaction made is not dirty yet, and not durable either.)
    func waitsOnPinned(_ f: PageFrame) -> Bool {
        guard !f.splitTargets.isEmpty else { return false }
        var seen = Set<ObjectIdentifier>([ObjectIdentifier(f)])
        var stack = f.splitTargets
        while let t = stack.popLast() {
            guard t.dirty || t.inTransaction, seen.insert(ObjectIdentifier(t)).inserted else { continue }
            if t.pins > 0 { return true }
            stack.append(contentsOf: t.splitTargets)
        }
        return false
    }
}
