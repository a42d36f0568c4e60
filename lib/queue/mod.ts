// The queue library: layout, queue ids, the record format, queue files, local

export * from "./content.ts";
export * from "./file.ts";
export * from "./id.ts";
export * from "./layout.ts";
export * from "./maildrop.ts";
export * from "./record.ts";
export * from "./submitter.ts";
