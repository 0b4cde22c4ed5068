/**
 * A build failure with a message meant for the person reading the build log: it is sent as the
 * `{"error": …}` log line before `SetPhase ERROR`.
 */
export class BuildFailure extends Error {
  override readonly name = 'BuildFailure';
}

/** The worker was told to stop (SIGTERM from the executor on cancel): no phase is reported. */
export class WorkerStopped extends Error {
  override readonly name = 'WorkerStopped';
}

/** The manager could not be reached or refused the registration token: nothing was built. */
export class RegistrationFailure extends Error {
  override readonly name = 'RegistrationFailure';
}
