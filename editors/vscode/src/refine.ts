// The server's Refine follow-up (`tandem.refine`, docs/code-actions.md) takes free text from an
// editor extension: its one argument is `{ "id": N }`, and `{ "id": N, "instruction": "..." }`
// refines with that text instead of a choice list (window/showMessageRequest).

/** The server's command that re-runs an applied action with an instruction. */
export const REFINE_COMMAND = "tandem.refine";

export const REFINE_PROMPT = "How should Tandem refine its last edit?";
export const REFINE_PLACEHOLDER = "e.g. shorter, handle errors, use iterators";

/**
 * The arguments for `workspace/executeCommand` with the user's `instruction` added to the
 * first argument (the server reads only that one), or undefined when the instruction is
 * missing or blank (the user cancelled: nothing to send).
 */
export function refineArguments(args: readonly unknown[], instruction: string | undefined): unknown[] | undefined {
  const text = instruction?.trim();
  if (!text) return undefined;
  const [first, ...rest] = args;
  const base = typeof first === "object" && first !== null && !Array.isArray(first) ? first : {};
  return [{ ...base, instruction: text }, ...rest];
}
