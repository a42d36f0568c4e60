// Signal names to Linux numbers: Postfix logs a child's death by number
// ("killed by signal 9"), and the runtime reports it by name.

const numbers: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGXCPU: 24,
  SIGXFSZ: 25,
};

/** The number of signal `name` ("SIGKILL" → 9), or the name when it is not known. */
export function signalNumber(name: string): number | string {
  return numbers[name] ?? name;
}
