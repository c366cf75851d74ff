/* verify_cmp.h — comparisons used by verify's checks: version constraints such as ">=0.8.0,<0.9"
 * and expected values of settings or query results, with PostgreSQL's memory and time units.
 *
 * Constraint syntax (both domains): either a plain value, meaning equality, or one or more
 * comma-separated terms "OP VALUE" that must all hold, OP one of  >= > <= < = == !=
 * (white space around OP and VALUE is ignored; "=" and "==" are the same).
 *
 * VCMP_VERSION: values are dotted versions compared component by component as integers
 *   ("0.10.0" > "0.8.2"); a trailing non-numeric part of a component ("1beta2", "16devel") is
 *   dropped for the numeric value. For ordering operators a missing component counts as 0
 *   (">=17" holds for "17.0" and "17.2"); a plain value or "=="/"!=" compares only the
 *   components the constraint gives ("17" equals "17.2", "0.8" equals "0.8.1").
 *
 * VCMP_VALUE: values as PostgreSQL settings and query results print them. Equality holds when
 *   - both are booleans (on/off, true/false, yes/no, t/f, 1/0, case-insensitive) and equal, or
 *   - both are numbers with units of the same class and equal after conversion: memory
 *     B, kB, MB, GB, TB (1024-based, as postgresql.conf) to bytes; time us, ms, s, min, h, d to
 *     milliseconds; or plain numbers, or
 *   - otherwise the texts are equal ignoring case and surrounding white space.
 *   Ordering operators need both sides to be numbers of the same unit class (else *why says so).
 */
#ifndef PGMEMCTL_VERIFY_CMP_H
#define PGMEMCTL_VERIFY_CMP_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { VCMP_VERSION, VCMP_VALUE } vcmp_domain;

/* Checks that constraint is well-formed for domain (at parse time of a spec). On failure writes
 * a reason ("unknown operator \"=>\"", "empty term", "\"abc\" is not a version") to why and
 * returns false. */
bool vcmp_validate(const char *constraint, vcmp_domain domain, char *why, size_t whylen);

/* Evaluates constraint against observed. Returns true when the comparison could be made and sets
 * *holds; returns false (with why) when it could not (malformed constraint, observed value not
 * a version/number, units of different classes). */
bool vcmp_eval(const char *constraint, vcmp_domain domain, const char *observed, bool *holds, char *why,
               size_t whylen);

/* Compares two dotted versions as above (missing components = 0): <0, 0, >0. */
int vcmp_version_compare(const char *a, const char *b);

/* True when the text starts with a comparison operator (after white space). */
bool vcmp_has_operator(const char *constraint);

#endif
