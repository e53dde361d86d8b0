// "What the hub keeps about me": what is stored where, who can read it and
// for how long (Policy/get), the lifecycle policy, and the consent records
// with the disclosure each one was given to.
import { t } from "../i18n";
import { manage, useLoad, LoadState, PageTitle, When, TextDownload } from "./util";

interface Policy {
  inactiveWarnAfterDays: number | null;
  purgeAfterDays: number | null;
  lastActivityAt: string | null;
  zeroAccess: boolean;
  stored: { what: string; where: string; whoCanRead: string; keptFor: string }[];
}

interface Consent {
  id: string | number;
  hubAccountId: number | string | null;
  login: string;
  at: string;
  tool: string;
  // The hub keeps the id (SHA-256, hex) of the disclosure text agreed to;
  // should it ever keep the text itself, that is shown.
  disclosure: string | null;
}

const HEX_ID = /^[0-9a-f]{64}$/;

export function PrivacyPage() {
  const policy = useLoad(() => manage<Policy>("Policy/get", {}));
  const consents = useLoad(async () => {
    const r = await manage<{ list: Consent[] }>("Consent/get", {});
    return r.list ?? [];
  });
  const p = policy.data;
  return (
    <section class="trust-page" aria-labelledby="trust-privacy-title">
      <PageTitle>
        <span id="trust-privacy-title">{t("trust.privacy.title")}</span>
      </PageTitle>
      <p class="trust-intro">{t("trust.privacy.intro")}</p>
      <LoadState state={policy} label={t("trust.privacy.title")} />
      {p && (
        <>
          <section class="trust-panel" aria-labelledby="trust-policy-h2" data-testid="policy">
            <h2 id="trust-policy-h2">{t("trust.policy.title")}</h2>
            <p data-testid="policy-mode">{p.zeroAccess ? t("trust.policy.zeroAccess") : t("trust.policy.hubKey")}</p>
            <ul>
              <li>
                {t("trust.policy.lastActivity")} <When at={p.lastActivityAt} />
              </li>
              {p.inactiveWarnAfterDays != null && p.inactiveWarnAfterDays > 0 && (
                <li>{t("trust.policy.warn", { days: p.inactiveWarnAfterDays })}</li>
              )}
              {p.purgeAfterDays != null && p.purgeAfterDays > 0 ? (
                <li>{t("trust.policy.purge", { days: p.purgeAfterDays })}</li>
              ) : (
                <li>{t("trust.policy.noPurge")}</li>
              )}
            </ul>
          </section>
          <h2>{t("trust.stored.title")}</h2>
          <p class="trust-hint">{t("trust.stored.note")}</p>
          <table class="trust-table" data-testid="stored">
            <caption class="sr-only">{t("trust.stored.title")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("trust.stored.what")}</th>
                <th scope="col">{t("trust.stored.where")}</th>
                <th scope="col">{t("trust.stored.who")}</th>
                <th scope="col">{t("trust.stored.kept")}</th>
              </tr>
            </thead>
            <tbody>
              {(p.stored ?? []).map((s, i) => (
                <tr key={i} data-testid="stored-row">
                  <th scope="row">{s.what}</th>
                  <td data-label={t("trust.stored.where")}>{s.where}</td>
                  <td data-label={t("trust.stored.who")}>{s.whoCanRead}</td>
                  <td data-label={t("trust.stored.kept")}>{s.keptFor}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}

      <h2 id="trust-consents-h2">{t("trust.consents.title")}</h2>
      <p class="trust-intro">{t("trust.consents.intro")}</p>
      <LoadState state={consents} label={t("trust.consents.title")} />
      {consents.data && consents.data.length === 0 && <p class="trust-empty">{t("trust.consents.none")}</p>}
      {consents.data && consents.data.length > 0 && (
        <ul class="trust-list" aria-labelledby="trust-consents-h2">
          {consents.data.map((c) => (
            <li key={String(c.id)} class="trust-item" data-testid="consent-row" data-login={c.login}>
              <details>
                <summary>
                  {t("trust.consents.item", { login: c.login, tool: c.tool })} <When at={c.at} />
                </summary>
                {c.disclosure && !HEX_ID.test(c.disclosure) ? (
                  <>
                    <pre class="trust-pre">{c.disclosure}</pre>
                    <TextDownload
                      text={c.disclosure}
                      filename={`mailkeep-consent-${c.id}.txt`}
                      label={t("trust.consents.download")}
                    />
                  </>
                ) : (
                  <p>
                    {t("trust.consents.idOnly")}{" "}
                    <code class="trust-secret" data-testid="consent-disclosure-id">
                      {c.disclosure ?? "-"}
                    </code>
                  </p>
                )}
              </details>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
