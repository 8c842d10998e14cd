/// What a backup run changed in its destination, as steps that put it back. Each step is
/// registered before the change it undoes, so a failure inside that change is undone too;
/// on failure the steps run in reverse order. Once the backup is recorded in the instance,
/// the steps are dropped: the new set stands.
final class BackupUndo {
    private var steps: [() -> Void] = []

    func register(_ step: @escaping () -> Void) { steps.append(step) }

    /// Runs every step, newest first, and forgets them.
    func run() {
        let s = steps
        steps = []
        for step in s.reversed() { step() }
    }

    func discard() { steps = [] }
}
