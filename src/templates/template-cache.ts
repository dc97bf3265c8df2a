import { parseTemplate } from './parse-template.ts';
import type { ParseTemplateOptions } from './parse-template.ts';
import type { ProvisioningTemplate } from './provisioning-template.ts';

/** How many parsed templates a cache keeps by default. */
export const DEFAULT_TEMPLATE_CACHE_SIZE = 256;

/**
 * Parsed templates keyed by type, name and body text. A stored template version never changes, so a flow that
 * provisions many devices with one template parses and validates it once, not once per device; a new default version
 * has another body and is parsed on first use. Least recently used entries go first; a body that fails to parse is
 * not kept (the error is thrown again on every use).
 */
export class TemplateCache {
  private readonly entries = new Map<string, ProvisioningTemplate>();
  private readonly capacity: number;

  constructor(capacity = DEFAULT_TEMPLATE_CACHE_SIZE) {
    this.capacity = Math.max(1, capacity);
  }

  /** `parseTemplate(body, options)`, from the cache when this type, name and body were parsed before. */
  parse(body: string, options: ParseTemplateOptions): ProvisioningTemplate {
    const key = `${options.type}\u0000${options.name ?? ''}\u0000${options.maxLength ?? ''}\u0000${body}`;
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const template = parseTemplate(body, options);
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(key, template);
    return template;
  }

  /** Number of parsed templates held. */
  get size(): number {
    return this.entries.size;
  }
}
