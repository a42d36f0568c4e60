// POSIX getopt(3) for Postfix-style commands.
//
// Postfix commands parse flags with getopt and stop at the first operand
// (Postfix passes "+" to glibc's getopt on Linux), so `postsuper -d ALL
// deferred` and `sendmail -t -i -f sender rcpt` read the same way here.

/** One parsed option: its letter and, for options that take one, its argument. */
export interface Option {
  flag: string;
  arg?: string;
}

/** The options in command-line order and the operands after them. */
export interface GetoptResult {
  options: Option[];
  operands: string[];
}

/** A bad flag or a flag missing its argument, with glibc's wording. */
export class GetoptError extends Error {
  constructor(message: string, readonly flag: string) {
    super(message);
    this.name = "GetoptError";
  }
}

/**
 * Parses `args` against an optstring such as `"c:dhnv"`: a letter followed by
 * ":" takes an argument (`-fvalue` or `-f value`); flags cluster (`-ti`); `--`
 * ends the options; the first operand ends them too; a lone `-` is an operand.
 */
export function getopt(args: string[], optstring: string): GetoptResult {
  const options: Option[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const word = args[i];
    if (word === "--") {
      i++;
      break;
    }
    if (!word.startsWith("-") || word === "-") break;
    for (let j = 1; j < word.length; j++) {
      const flag = word[j];
      const at = flag === ":" ? -1 : optstring.indexOf(flag);
      if (at < 0) throw new GetoptError(`invalid option -- '${flag}'`, flag);
      if (optstring[at + 1] !== ":") {
        options.push({ flag });
        continue;
      }
      if (j + 1 < word.length) {
        options.push({ flag, arg: word.slice(j + 1) });
      } else if (i + 1 < args.length) {
        options.push({ flag, arg: args[++i] });
      } else {
        throw new GetoptError(`option requires an argument -- '${flag}'`, flag);
      }
      break;
    }
  }
  return { options, operands: args.slice(i) };
}
