import { parseDocument, type ScalarTag, type Tags } from 'yaml';
import { ConfigError } from '../errors/buildman-error.js';

/**
 * Reads config YAML the way Quay's PyYAML does (YAML 1.1), so one file means the same thing to
 * both: `True`/`False`, `yes`/`no`, `on`/`off` are booleans, as are their capitalised forms.
 * The `yaml` package's YAML 1.1 schema also reads a bare `y` or `n` as a boolean; PyYAML does not,
 * so its boolean patterns are narrowed to PyYAML's.
 */
const PYYAML_TRUE = /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const PYYAML_FALSE = /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/;

function pyyamlBooleans(tags: Tags): Tags {
  return tags.map((tag) => {
    if (typeof tag === 'string' || tag.tag !== 'tag:yaml.org,2002:bool' || !('test' in tag)) return tag;
    const bool: ScalarTag = { ...(tag as ScalarTag), test: tag.identify?.(true) ? PYYAML_TRUE : PYYAML_FALSE };
    return bool;
  });
}

/**
 * The file's content as plain data (an empty file is `null`). A syntax error throws a ConfigError
 * whose issues give the line and column of each error.
 */
export function parseQuayYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { schema: 'yaml-1.1', customTags: pyyamlBooleans });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((err) => {
      const at = err.linePos?.[0];
      // The package's message repeats the position and adds a code frame; keep its first sentence.
      const what = (err.message.split('\n')[0] ?? err.message).replace(/ at line \d+, column \d+:?\s*$/, '');
      return at ? `line ${at.line}, column ${at.col}: ${what}` : what;
    });
    throw new ConfigError(`${source}: not valid YAML:\n${issues.join('\n')}`, issues);
  }
  return doc.toJS();
}
