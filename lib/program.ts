// What every program module receives and returns.
//
// mod.ts resolves the program name, imports that one module and calls its
// `main(args, ctx)`; the exit code it returns becomes the process's.

/** The invocation as mod.ts saw it. */
export interface ProgramContext {
  /** The program's name as invoked (`mailq`, `nqmgr`, `postconf`, ...). */
  name: string;
  /** The canonical program whose module runs (`sendmail` for `mailq`). */
  program: string;
}

/** The one export every program module has. */
export type ProgramMain = (args: string[], ctx: ProgramContext) => Promise<number>;

/** A program module as mod.ts imports it. */
export interface ProgramModule {
  main: ProgramMain;
}
