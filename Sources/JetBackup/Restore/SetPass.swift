import JetStore

extension SetVerifier {
    /// One pass over a set's content in the order restore needs it: every database image,
    /// then every log generation in order, each file read, decompressed and checked once and
    /// handed on. `verify` drives it to the end, running the replay check on each generation;
    /// `restore` copies the images as they are checked and hands each generation to the
    /// engine's recovery (`SetLogFeed`), which replays it before the next one is read.
    /// Progress is reported (and `--max-rate` applied) per chunk of an image and per generation.
    final class Pass {
        let verifier: SetVerifier
        let m: BackupManifest
        let setDir: String
        let total: Int64
        private let throttle: Throttle?
        private var throttled: Int64 = 0
        private(set) var report = Report()
        /// The log generations not read yet, oldest first.
        private var logs: ArraySlice<BackupManifest.File>
        /// The creation time of the generation read last (the next one links to it).
        private var previous: UInt64?
        /// The manifest's commit times against the logs' (checked once the last generation is read).
        private var commitTimes = CommitTimeCheck()
        private var endChecked = false

        init(_ verifier: SetVerifier, _ m: BackupManifest, setDir: String) {
            self.verifier = verifier
            self.m = m
            self.setDir = setDir
            total = m.files.reduce(Int64(0)) { $0 + $1.size }
            throttle = verifier.maxBytesPerSecond.map { Throttle(bytesPerSecond: $0) }
            logs = m.files.filter { $0.kind == .log }.sorted { $0.generation! < $1.generation! }[...]
            report.setDirectory = setDir
        }

        private func progress(_ done: Int64, _ file: String, isCancelled: () -> Bool,
                                       _ onProgress: (Int64, Int64, String) -> Void) {
            if let throttle, done > throttled {
                throttle.consume(done - throttled, isCancelled: isCancelled)
                throttled = done
            }
            onProgress(done, total, file)
        }

        /// Every database image, checked; with a sink, copied as it is checked and its SHA-256
        /// taken from what the sink wrote (no second hashing); without, computed here.
        func images(sink: Sink?, isCancelled: () -> Bool, progress onProgress: (Int64, Int64, String) -> Void) throws {
            let (m, setDir) = (self.m, self.setDir)
            for db in m.databases {
                guard let f = m.files.first(where: { $0.name == db.file }) else {
                    throw SetVerifier.corrupt("the manifest lists no file for database \(db.name)")
                }
                let base = report.bytes
                var done: Int64 = 0
                func chunk(_ n: Int) {
                    done += Int64(n)
                    progress(base + done, f.name, isCancelled: isCancelled, onProgress)
                }
                let pages: Int
                if let sink {
                    var w = try sink.image(f)
                    do {
                        pages = try verifier.checkImage(f, db: db, m: m, setDir: setDir, sha: false, copy: &w,
                                                        isCancelled: isCancelled, progress: chunk)
                        guard try w.finish() == f.sha256 else {
                            throw JetError(.readVerifyFailure, "\(FilePaths.join(setDir, f.name)) fails its SHA-256; the file is damaged: "
                                + "use another backup")
                        }
                    } catch {
                        w.abandon()
                        throw error
                    }
                } else {
                    pages = try verifier.checkImage(f, db: db, m: m, setDir: setDir, sha: true, isCancelled: isCancelled, progress: chunk)
                }
                report.pages += pages
                report.databases += 1; report.files += 1; report.bytes += f.size
            }
        }

        /// Reads the next log generation once: size, CRC32C and SHA-256 of the stored file,
        /// decompressed and checked against the raw size and CRC32C, parsed (every record's
        /// checksum), checked as the next link of the chain, the replay start a record boundary
        /// in its generation, then `check` (verify's replay check) and its commit times, then handed
        /// to the sink (its SHA-256 taken from what the sink wrote when the file is stored
        /// uncompressed). Returns the parsed generation, or nil after the last, once the manifest's
        /// commit times were checked against the logs'. `isCancelled` is polled first.
        func nextLog(sink: Sink?, isCancelled: () -> Bool, progress onProgress: (Int64, Int64, String) -> Void,
                              check: (LogReader.Generation) throws -> Void = { _ in }) throws -> LogReader.Generation? {
            guard let f = logs.first else {
                if !endChecked {
                    endChecked = true
                    try commitTimes.check(m, setDir: setDir)
                }
                return nil
            }
            if isCancelled() { throw SetVerifier.interrupted(setDir) }
            let path = FilePaths.join(setDir, f.name)
            // Uncompressed, the sink's hash of what it wrote is the stored file's.
            let hashHere = sink == nil || f.rawSize != nil
            let stored = try verifier.readChecked(f, setDir: setDir, sha: hashHere)
            let raw = try verifier.rawLog(f, stored, setDir: setDir)
            let g = try LogReader.parse(raw, path: path)
            let n = try verifier.checkLog(g, file: path, generation: f.generation!, signature: m.logSignature.signature!, previous: previous)
            if f.generation == m.replayFrom.generation && !ReplayCheck.isRecordBoundary(g, offset: Int(m.replayFrom.offset)) {
                let start = "generation \(m.replayFrom.generation), offset \(m.replayFrom.offset)"
                throw SetVerifier.corrupt("the manifest's replay start (\(start)) is not where a record of \(path) begins; "
                    + "the manifest is damaged: use another backup")
            }
            try check(g)
            try commitTimes.feed(g)
            if let sink {
                let written = try sink.log(f, raw)
                if !hashHere && written != f.sha256 {
                    throw JetError(.logReadVerifyFailure, "\(path) fails its SHA-256; the file is damaged: use another backup")
                }
            }
            logs = logs.dropFirst()
            previous = g.header.creationTime
            report.logFileSize = Int(g.header.fileSize)
            report.generations += 1; report.files += 1; report.bytes += f.size; report.records += n
            report.logBytesRaw += Int64(raw.count)
            progress(report.bytes, f.name, isCancelled: isCancelled, onProgress)
            return g
        }
    }
}
