// Errors the CLI reports to the user in one line, with the exit code they mean.

/** Bad arguments, a missing library, a command that cannot start. */
export const EXIT_USAGE = 2;

export class CliError extends Error {
  readonly code = 'ERR_CLI_USAGE';
  constructor(
    message: string,
    readonly exitCode: number = EXIT_USAGE,
  ) {
    super(message);
  }
}
