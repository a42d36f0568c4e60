// RFC 5321/5322 addresses: header address lists (parse and print), local-part
// quoting (internal and external forms), splitting, and the canonical-form
// rewrite rules of trivial-rewrite(8).

export { scanTokens, SPECIALS, type Token, type TokenType } from "./tokens.ts";
export {
  type AddressParts,
  externalize,
  internalize,
  isDotString,
  quoteAddress,
  quoteString,
  splitAddress,
  unquoteAddress,
} from "./quote.ts";
export {
  type Empty,
  extractAddresses,
  formatAddressList,
  formatAddressPieces,
  formatMailbox,
  formatPhrase,
  fullName,
  type Group,
  joinTokens,
  type ListEntry,
  listMailboxes,
  type Mailbox,
  parseAddressList,
  type ParseOptions,
} from "./parse.ts";
export { rewriteAddress, type RewriteRules, rewriteRulesFrom, stripRoute } from "./rewrite.ts";
