// The task vocabulary shared by the CLI, the queue, the worker and the database.

import Jobs
import Testing

@Suite struct TaskKindTests {
    @Test func captionsTakeNoTextInputAndTheOthersDo() {
        #expect(TaskKind.allCases.filter { !$0.takesTextInput } == [.caption])
    }

    @Test func rawValuesAreTheStoredNames() {
        #expect(TaskKind.allCases.map(\.rawValue) == ["caption", "vqa", "ground", "chat"])
    }
}

@Suite struct TaskStatusTests {
    @Test func onlyQueuedAndRunningAreOpen() {
        #expect(TaskStatus.allCases.filter { !$0.isFinal } == [.queued, .running])
    }
}
