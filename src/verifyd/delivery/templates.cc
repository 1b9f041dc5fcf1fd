#include "verifyd/delivery/templates.h"

#include <array>
#include <cstddef>
#include <utility>

namespace verifyd {
namespace {

// One row per locale (Twilio's list: 36 tags, though it is often called "35 languages"). Patterns
// use {friendly_name}, {code}, {amount}, {payee} and {ttl}. `base` has no final punctuation: it
// gets `stop` when another sentence follows, and complete sentences are joined with `space`.
// Latin-script texts keep to ASCII apostrophes and plain spaces so that they stay within GSM-7
// wherever the language allows it.
struct LocaleText {
  std::string_view tag;        // Twilio's spelling
  std::string_view tts;        // <Say language="...">
  std::string_view html_lang;  // <html lang="...">
  bool rtl;
  std::string_view stop;        // ends `base` when another sentence follows
  std::string_view space;       // between two complete sentences
  std::string_view digit_sep;   // between the digits the voice reads one by one
  std::string_view base;        // "Your {friendly_name} verification code is: {code}" (no stop)
  std::string_view no_share;    // the service's do-not-share warning
  std::string_view psd2;        // "You are about to pay {amount} to {payee}."
  std::string_view again;       // "Once again, your code is: {code}." (a complete sentence)
  std::string_view subject;     // "Your {friendly_name} verification code"
  std::string_view expiry;      // "This code will expire in {ttl} minutes."
  std::string_view dont_share;  // HJ..2: "Do not share this code with anyone."
  std::string_view code_first;  // HJ..3: "{code} is your verification code for {friendly_name}."
};

// clang-format off
constexpr std::array<LocaleText, 36> kLocales{{
    {"af", "af-ZA", "af", false, ".", " ", ", ",
     "Jou verifikasiekode vir {friendly_name} is: {code}",
     "Moenie hierdie kode met enigiemand deel nie; ons werknemers sal nooit vir die kode vra nie.",
     "Jy is op die punt om {amount} aan {payee} te betaal.",
     "Ek herhaal: jou kode is {code}.",
     "Jou verifikasiekode vir {friendly_name}",
     "Hierdie kode verval oor {ttl} minute.",
     "Moenie hierdie kode met enigiemand deel nie.",
     "{code} is jou verifikasiekode vir {friendly_name}."},
    {"ar", "arb", "ar", true, ".", " ", "، ",
     "رمز التحقق الخاص بك لدى {friendly_name} هو: {code}",
     "لا تشارك هذا الرمز مع أي شخص؛ لن يطلب منك موظفونا الرمز أبدًا.",
     "أنت على وشك دفع {amount} إلى {payee}.",
     "مرة أخرى، رمزك هو: {code}.",
     "رمز التحقق الخاص بك لدى {friendly_name}",
     "ستنتهي صلاحية هذا الرمز خلال {ttl} دقائق.",
     "لا تشارك هذا الرمز مع أي شخص.",
     "{code} هو رمز التحقق الخاص بك لدى {friendly_name}."},
    {"ca", "ca-ES", "ca", false, ".", " ", ", ",
     "El teu codi de verificació per a {friendly_name} és: {code}",
     "No comparteixis aquest codi amb ningú; els nostres empleats mai no et demanaran el codi.",
     "Estàs a punt de pagar {amount} a {payee}.",
     "Un cop més, el teu codi és: {code}.",
     "El teu codi de verificació per a {friendly_name}",
     "Aquest codi caducarà d'aquí a {ttl} minuts.",
     "No comparteixis aquest codi amb ningú.",
     "{code} és el teu codi de verificació per a {friendly_name}."},
    {"cs", "cs-CZ", "cs", false, ".", " ", ", ",
     "Váš ověřovací kód pro {friendly_name} je: {code}",
     "Tento kód nikomu nesdělujte; naši zaměstnanci vás o něj nikdy nepožádají.",
     "Chystáte se zaplatit {amount} příjemci {payee}.",
     "Ještě jednou, váš kód je: {code}.",
     "Váš ověřovací kód pro {friendly_name}",
     "Platnost kódu vyprší za {ttl} min.",
     "Tento kód nikomu nesdělujte.",
     "{code} je váš ověřovací kód pro {friendly_name}."},
    {"da", "da-DK", "da", false, ".", " ", ", ",
     "Din bekræftelseskode til {friendly_name} er: {code}",
     "Del ikke denne kode med nogen; vores medarbejdere vil aldrig bede dig om koden.",
     "Du er ved at betale {amount} til {payee}.",
     "Jeg gentager: din kode er {code}.",
     "Din bekræftelseskode til {friendly_name}",
     "Denne kode udløber om {ttl} minutter.",
     "Del ikke denne kode med nogen.",
     "{code} er din bekræftelseskode til {friendly_name}."},
    {"de", "de-DE", "de", false, ".", " ", ", ",
     "Ihr Bestätigungscode für {friendly_name} lautet: {code}",
     "Geben Sie diesen Code an niemanden weiter; unsere Mitarbeiter werden Sie niemals nach dem "
     "Code fragen.",
     "Sie sind dabei, {amount} an {payee} zu zahlen.",
     "Noch einmal: Ihr Code lautet {code}.",
     "Ihr Bestätigungscode für {friendly_name}",
     "Dieser Code läuft in {ttl} Minuten ab.",
     "Geben Sie diesen Code an niemanden weiter.",
     "{code} ist Ihr Bestätigungscode für {friendly_name}."},
    // Greek: ";" is the question mark, "·" the semicolon.
    {"el", "el-GR", "el", false, ".", " ", ", ",
     "Ο κωδικός επαλήθευσής σας για {friendly_name} είναι: {code}",
     "Μην κοινοποιήσετε αυτόν τον κωδικό σε κανέναν· οι υπάλληλοί μας δεν θα σας ζητήσουν ποτέ τον "
     "κωδικό.",
     "Πρόκειται να πληρώσετε {amount} στον δικαιούχο {payee}.",
     "Επαναλαμβάνω, ο κωδικός σας είναι: {code}.",
     "Ο κωδικός επαλήθευσής σας για {friendly_name}",
     "Αυτός ο κωδικός θα λήξει σε {ttl} λεπτά.",
     "Μην κοινοποιήσετε αυτόν τον κωδικό σε κανέναν.",
     "Το {code} είναι ο κωδικός επαλήθευσής σας για {friendly_name}."},
    {"en", "en-US", "en", false, ".", " ", ", ",
     "Your {friendly_name} verification code is: {code}",
     "Don't share this code with anyone; our employees will never ask for the code.",
     "You are about to pay {amount} to {payee}.",
     "Once again, your code is: {code}.",
     "Your {friendly_name} verification code",
     "This code will expire in {ttl} minutes.",
     "Do not share this code with anyone.",
     "{code} is your verification code for {friendly_name}."},
    {"en-GB", "en-GB", "en-GB", false, ".", " ", ", ",
     "Your {friendly_name} verification code is: {code}",
     "Don't share this code with anyone; our employees will never ask for the code.",
     "You are about to pay {amount} to {payee}.",
     "Once again, your code is: {code}.",
     "Your {friendly_name} verification code",
     "This code will expire in {ttl} minutes.",
     "Do not share this code with anyone.",
     "{code} is your verification code for {friendly_name}."},
    {"es", "es-ES", "es", false, ".", " ", ", ",
     "Tu código de verificación de {friendly_name} es: {code}",
     "No compartas este código con nadie; nuestros empleados nunca te pedirán el código.",
     "Estás a punto de pagar {amount} a {payee}.",
     "Una vez más, tu código es: {code}.",
     "Tu código de verificación de {friendly_name}",
     "Este código expirará en {ttl} minutos.",
     "No compartas este código con nadie.",
     "{code} es tu código de verificación de {friendly_name}."},
    {"fi", "fi-FI", "fi", false, ".", " ", ", ",
     "Palvelun {friendly_name} vahvistuskoodisi on: {code}",
     "Älä jaa tätä koodia kenenkään kanssa; työntekijämme eivät koskaan kysy koodia sinulta.",
     "Olet maksamassa {amount} saajalle {payee}.",
     "Vielä kerran, koodisi on: {code}.",
     "Palvelun {friendly_name} vahvistuskoodisi",
     "Tämä koodi vanhenee {ttl} minuutin kuluttua.",
     "Älä jaa tätä koodia kenenkään kanssa.",
     "{code} on palvelun {friendly_name} vahvistuskoodisi."},
    {"fr", "fr-FR", "fr", false, ".", " ", ", ",
     "Votre code de vérification pour {friendly_name} est : {code}",
     "Ne partagez ce code avec personne ; nos employés ne vous demanderont jamais ce code.",
     "Vous êtes sur le point de payer {amount} à {payee}.",
     "Encore une fois, votre code est : {code}.",
     "Votre code de vérification pour {friendly_name}",
     "Ce code expirera dans {ttl} minutes.",
     "Ne partagez ce code avec personne.",
     "{code} est votre code de vérification pour {friendly_name}."},
    // Hebrew: phrased so that it reads the same to a man or a woman.
    {"he", "he-IL", "he", true, ".", " ", ", ",
     "קוד האימות שלך ל-{friendly_name} הוא: {code}",
     "אין לשתף את הקוד הזה עם אף אחד; העובדים שלנו לעולם לא יבקשו ממך את הקוד.",
     "עומד להתבצע תשלום של {amount} ל-{payee}.",
     "שוב, הקוד שלך הוא: {code}.",
     "קוד האימות שלך ל-{friendly_name}",
     "תוקף הקוד יפוג בעוד {ttl} דקות.",
     "אין לשתף את הקוד הזה עם אף אחד.",
     "{code} הוא קוד האימות שלך ל-{friendly_name}."},
    {"hi", "hi-IN", "hi", false, "।", " ", ", ",
     "आपका {friendly_name} सत्यापन कोड है: {code}",
     "यह कोड किसी के साथ साझा न करें; हमारे कर्मचारी आपसे कभी भी यह कोड नहीं माँगेंगे।",
     "आप {payee} को {amount} का भुगतान करने वाले हैं।",
     "एक बार फिर, आपका कोड है: {code}।",
     "आपका {friendly_name} सत्यापन कोड",
     "यह कोड {ttl} मिनट में समाप्त हो जाएगा।",
     "यह कोड किसी के साथ साझा न करें।",
     "{code} {friendly_name} के लिए आपका सत्यापन कोड है।"},
    {"hr", "hr-HR", "hr", false, ".", " ", ", ",
     "Vaš verifikacijski kod za {friendly_name} je: {code}",
     "Ne dijelite ovaj kod ni s kim; naši zaposlenici nikada vas neće tražiti kod.",
     "Upravo ćete platiti {amount} primatelju {payee}.",
     "Ponavljam, vaš kod je: {code}.",
     "Vaš verifikacijski kod za {friendly_name}",
     "Ovaj kod istječe za {ttl} min.",
     "Ne dijelite ovaj kod ni s kim.",
     "{code} je vaš verifikacijski kod za {friendly_name}."},
    {"hu", "hu-HU", "hu", false, ".", " ", ", ",
     "Az Ön {friendly_name} ellenőrző kódja: {code}",
     "Ne ossza meg ezt a kódot senkivel; munkatársaink soha nem fogják elkérni Öntől a kódot.",
     "Ön {amount} összeget készül kifizetni a következő kedvezményezettnek: {payee}.",
     "Még egyszer: az Ön kódja {code}.",
     "Az Ön {friendly_name} ellenőrző kódja",
     "Ez a kód {ttl} perc múlva lejár.",
     "Ne ossza meg ezt a kódot senkivel.",
     "{code} az Ön {friendly_name} ellenőrző kódja."},
    {"id", "id-ID", "id", false, ".", " ", ", ",
     "Kode verifikasi {friendly_name} Anda adalah: {code}",
     "Jangan bagikan kode ini kepada siapa pun; karyawan kami tidak akan pernah meminta kode ini.",
     "Anda akan membayar {amount} kepada {payee}.",
     "Sekali lagi, kode Anda adalah: {code}.",
     "Kode verifikasi {friendly_name} Anda",
     "Kode ini akan kedaluwarsa dalam {ttl} menit.",
     "Jangan bagikan kode ini kepada siapa pun.",
     "{code} adalah kode verifikasi {friendly_name} Anda."},
    {"it", "it-IT", "it", false, ".", " ", ", ",
     "Il tuo codice di verifica per {friendly_name} è: {code}",
     "Non condividere questo codice con nessuno; i nostri dipendenti non ti chiederanno mai il "
     "codice.",
     "Stai per pagare {amount} a {payee}.",
     "Ripeto, il tuo codice è: {code}.",
     "Il tuo codice di verifica per {friendly_name}",
     "Questo codice scadrà tra {ttl} minuti.",
     "Non condividere questo codice con nessuno.",
     "{code} è il tuo codice di verifica per {friendly_name}."},
    {"ja", "ja-JP", "ja", false, "。", "", "、",
     "{friendly_name}の認証コードは{code}です",
     "このコードは誰とも共有しないでください。当社の従業員がコードをお尋ねすることはありません。",
     "{payee}への{amount}のお支払いを承認しようとしています。",
     "もう一度繰り返します。認証コードは{code}です。",
     "{friendly_name}の認証コード",
     "このコードの有効期限は{ttl}分です。",
     "このコードは誰とも共有しないでください。",
     "{code}は{friendly_name}の認証コードです。"},
    {"ko", "ko-KR", "ko", false, ".", " ", ", ",
     "{friendly_name} 인증 코드는 {code}입니다",
     "이 코드를 다른 사람과 공유하지 마세요. 당사 직원은 절대로 코드를 요청하지 않습니다.",
     "{payee}에 {amount} 결제를 진행하려고 합니다.",
     "다시 한번 말씀드립니다. 코드는 {code}입니다.",
     "{friendly_name} 인증 코드",
     "이 코드는 {ttl}분 후에 만료됩니다.",
     "이 코드를 다른 사람과 공유하지 마세요.",
     "{code}은(는) {friendly_name} 인증 코드입니다."},
    {"ms", "ms-MY", "ms", false, ".", " ", ", ",
     "Kod pengesahan {friendly_name} anda ialah: {code}",
     "Jangan kongsi kod ini dengan sesiapa; pekerja kami tidak akan sekali-kali meminta kod ini.",
     "Anda akan membayar {amount} kepada {payee}.",
     "Sekali lagi, kod anda ialah: {code}.",
     "Kod pengesahan {friendly_name} anda",
     "Kod ini akan tamat tempoh dalam {ttl} minit.",
     "Jangan kongsi kod ini dengan sesiapa.",
     "{code} ialah kod pengesahan {friendly_name} anda."},
    {"nb", "nb-NO", "nb", false, ".", " ", ", ",
     "Din bekreftelseskode for {friendly_name} er: {code}",
     "Ikke del denne koden med noen; våre ansatte vil aldri be deg om koden.",
     "Du er i ferd med å betale {amount} til {payee}.",
     "Jeg gjentar: koden din er {code}.",
     "Din bekreftelseskode for {friendly_name}",
     "Denne koden utløper om {ttl} minutter.",
     "Ikke del denne koden med noen.",
     "{code} er bekreftelseskoden din for {friendly_name}."},
    {"nl", "nl-NL", "nl", false, ".", " ", ", ",
     "Je verificatiecode voor {friendly_name} is: {code}",
     "Deel deze code met niemand; onze medewerkers zullen nooit om de code vragen.",
     "Je staat op het punt {amount} te betalen aan {payee}.",
     "Nogmaals, je code is: {code}.",
     "Je verificatiecode voor {friendly_name}",
     "Deze code verloopt over {ttl} minuten.",
     "Deel deze code met niemand.",
     "{code} is je verificatiecode voor {friendly_name}."},
    // Polish, Czech, Croatian, Romanian and Russian say "min." after {ttl}: the full word would
    // need the plural form that matches the number.
    {"pl", "pl-PL", "pl", false, ".", " ", ", ",
     "Twój kod weryfikacyjny {friendly_name} to: {code}",
     "Nie udostępniaj tego kodu nikomu; nasi pracownicy nigdy nie poproszą Cię o ten kod.",
     "Zamierzasz zapłacić {amount} na rzecz {payee}.",
     "Powtarzam, Twój kod to: {code}.",
     "Twój kod weryfikacyjny {friendly_name}",
     "Ten kod wygaśnie za {ttl} min.",
     "Nie udostępniaj tego kodu nikomu.",
     "{code} to Twój kod weryfikacyjny {friendly_name}."},
    {"pt", "pt-PT", "pt-PT", false, ".", " ", ", ",
     "O seu código de verificação para {friendly_name} é: {code}",
     "Não partilhe este código com ninguém; os nossos funcionários nunca lhe pedirão o código.",
     "Está prestes a pagar {amount} a {payee}.",
     "Repito, o seu código é: {code}.",
     "O seu código de verificação para {friendly_name}",
     "Este código expira dentro de {ttl} minutos.",
     "Não partilhe este código com ninguém.",
     "{code} é o seu código de verificação para {friendly_name}."},
    {"pt-BR", "pt-BR", "pt-BR", false, ".", " ", ", ",
     "Seu código de verificação para {friendly_name} é: {code}",
     "Não compartilhe este código com ninguém; nossos funcionários nunca pedirão o código.",
     "Você está prestes a pagar {amount} para {payee}.",
     "Repetindo, seu código é: {code}.",
     "Seu código de verificação para {friendly_name}",
     "Este código expira em {ttl} minutos.",
     "Não compartilhe este código com ninguém.",
     "{code} é seu código de verificação para {friendly_name}."},
    {"ro", "ro-RO", "ro", false, ".", " ", ", ",
     "Codul tău de verificare pentru {friendly_name} este: {code}",
     "Nu comunica nimănui acest cod; angajații noștri nu îți vor cere niciodată codul.",
     "Urmează să plătești {amount} către {payee}.",
     "Repet, codul tău este: {code}.",
     "Codul tău de verificare pentru {friendly_name}",
     "Acest cod expiră în {ttl} min.",
     "Nu comunica nimănui acest cod.",
     "{code} este codul tău de verificare pentru {friendly_name}."},
    {"ru", "ru-RU", "ru", false, ".", " ", ", ",
     "Ваш код подтверждения для {friendly_name}: {code}",
     "Никому не сообщайте этот код; наши сотрудники никогда не попросят его у вас.",
     "Вы собираетесь заплатить {amount} получателю {payee}.",
     "Повторяю, ваш код: {code}.",
     "Ваш код подтверждения для {friendly_name}",
     "Срок действия кода истечёт через {ttl} мин.",
     "Никому не сообщайте этот код.",
     "{code} — ваш код подтверждения для {friendly_name}."},
    {"sv", "sv-SE", "sv", false, ".", " ", ", ",
     "Din verifieringskod för {friendly_name} är: {code}",
     "Dela inte den här koden med någon; våra anställda kommer aldrig att be dig om koden.",
     "Du är på väg att betala {amount} till {payee}.",
     "Jag upprepar: din kod är {code}.",
     "Din verifieringskod för {friendly_name}",
     "Den här koden upphör att gälla om {ttl} minuter.",
     "Dela inte den här koden med någon.",
     "{code} är din verifieringskod för {friendly_name}."},
    // Thai ends a sentence with a space, not a full stop.
    {"th", "th-TH", "th", false, "", " ", ", ",
     "รหัสยืนยัน {friendly_name} ของคุณคือ {code}",
     "อย่าแชร์รหัสนี้กับผู้อื่น พนักงานของเราจะไม่ขอรหัสนี้จากคุณ",
     "คุณกำลังจะชำระเงิน {amount} ให้แก่ {payee}",
     "ขอย้ำอีกครั้ง รหัสของคุณคือ {code}",
     "รหัสยืนยัน {friendly_name} ของคุณ",
     "รหัสนี้จะหมดอายุใน {ttl} นาที",
     "อย่าแชร์รหัสนี้กับผู้อื่น",
     "{code} คือรหัสยืนยัน {friendly_name} ของคุณ"},
    // Filipino as it is written in practice: Tagalog with the English "verification code".
    {"tl", "fil-PH", "tl", false, ".", " ", ", ",
     "Ang iyong verification code para sa {friendly_name} ay: {code}",
     "Huwag ibahagi ang code na ito kaninuman; hindi kailanman hihingin ng aming mga empleyado ang "
     "code.",
     "Magbabayad ka ng {amount} sa {payee}.",
     "Muli, ang iyong code ay: {code}.",
     "Ang iyong verification code para sa {friendly_name}",
     "Mag-e-expire ang code na ito sa loob ng {ttl} minuto.",
     "Huwag ibahagi ang code na ito kaninuman.",
     "{code} ang iyong verification code para sa {friendly_name}."},
    {"tr", "tr-TR", "tr", false, ".", " ", ", ",
     "{friendly_name} doğrulama kodunuz: {code}",
     "Bu kodu kimseyle paylaşmayın; çalışanlarımız sizden asla kodu istemez.",
     "{payee} adlı alıcıya {amount} ödeme yapmak üzeresiniz.",
     "Tekrar ediyorum, kodunuz: {code}.",
     "{friendly_name} doğrulama kodunuz",
     "Bu kodun süresi {ttl} dakika içinde dolacak.",
     "Bu kodu kimseyle paylaşmayın.",
     "{code}, {friendly_name} doğrulama kodunuzdur."},
    {"vi", "vi-VN", "vi", false, ".", " ", ", ",
     "Mã xác minh {friendly_name} của bạn là: {code}",
     "Đừng chia sẻ mã này với bất kỳ ai; nhân viên của chúng tôi sẽ không bao giờ yêu cầu bạn cung "
     "cấp mã.",
     "Bạn sắp thanh toán {amount} cho {payee}.",
     "Xin nhắc lại, mã của bạn là: {code}.",
     "Mã xác minh {friendly_name} của bạn",
     "Mã này sẽ hết hạn sau {ttl} phút.",
     "Đừng chia sẻ mã này với bất kỳ ai.",
     "{code} là mã xác minh {friendly_name} của bạn."},
    // Chinese: zh is Traditional as written in Taiwan (TW -> zh), zh-CN Simplified, zh-HK
    // Traditional with Hong Kong wording ("閣下"). The voices are Mandarin (cmn-CN; Polly and Google both
    // have it) and Cantonese (yue-HK).
    {"zh", "cmn-CN", "zh-Hant", false, "。", "", "，",
     "您的{friendly_name}驗證碼為：{code}",
     "請勿將此驗證碼告訴任何人；我們的員工絕不會向您索取驗證碼。",
     "您即將向{payee}支付{amount}。",
     "再重複一次，您的驗證碼為：{code}。",
     "您的{friendly_name}驗證碼",
     "此驗證碼將在{ttl}分鐘後失效。",
     "請勿將此驗證碼告訴任何人。",
     "{code}是您的{friendly_name}驗證碼。"},
    {"zh-CN", "cmn-CN", "zh-CN", false, "。", "", "，",
     "您的{friendly_name}验证码为：{code}",
     "请勿将此验证码告诉任何人；我们的员工绝不会向您索取验证码。",
     "您即将向{payee}支付{amount}。",
     "再重复一遍，您的验证码为：{code}。",
     "您的{friendly_name}验证码",
     "此验证码将在{ttl}分钟后失效。",
     "请勿将此验证码告诉任何人。",
     "{code}是您的{friendly_name}验证码。"},
    {"zh-HK", "yue-HK", "zh-HK", false, "。", "", "，",
     "閣下的{friendly_name}驗證碼為：{code}",
     "請勿向任何人透露此驗證碼；我們的職員絕不會向閣下索取驗證碼。",
     "閣下即將向{payee}支付{amount}。",
     "再重複一次，閣下的驗證碼為：{code}。",
     "閣下的{friendly_name}驗證碼",
     "此驗證碼將於{ttl}分鐘後失效。",
     "請勿向任何人透露此驗證碼。",
     "{code}是閣下的{friendly_name}驗證碼。"},
}};
// clang-format on

// Destination regions (ISO 3166-1 alpha-2) by locale: the language most people there read.
//  - BE -> nl (Dutch speakers are the majority), CH -> de, LU -> fr, CA -> en.
//  - IN -> en: Hindi is not the first language of most Indians, English is read across the
//    country. ZA and NA -> en: Afrikaans is a minority language in both.
//  - UA -> en: Ukrainian is not supported and Russian would offend; likewise en for GE, the
//    Baltic states and the Central Asian states other than KZ and KG (where Russian is official).
//  - BA, RS, ME -> en rather than hr: the languages are close, but the label is not neutral.
//  - TW -> zh (Traditional), HK and MO -> zh-HK, CN -> zh-CN; SG -> en.
//  - GB, IE and the Crown dependencies -> en-GB; the US and everything else -> en.
constexpr std::pair<std::string_view, std::string_view> kRegions[] = {
    {"ar", "AE BH DZ EG EH IQ JO KW LB LY MA MR OM PS QA SA SD SY TN YE"},
    {"ca", "AD"},
    {"cs", "CZ"},
    {"da", "DK FO GL"},
    {"de", "AT CH DE LI"},
    {"el", "CY GR"},
    {"en-GB", "GB GG GI IE IM JE"},
    {"es", "AR BO CL CO CR CU DO EC ES GQ GT HN MX NI PA PE PR PY SV UY VE"},
    {"fi", "FI"},
    {"fr",
     "BF BI BJ BL CD CF CG CI CM DJ FR GA GF GN GP HT KM LU MC MF MG ML MQ NC NE PF PM RE "
     "SN TD TG WF YT"},
    {"he", "IL"},
    {"hr", "HR"},
    {"hu", "HU"},
    {"id", "ID"},
    {"it", "IT SM VA"},
    {"ja", "JP"},
    {"ko", "KP KR"},
    {"ms", "BN MY"},
    {"nb", "NO SJ"},
    {"nl", "AW BE BQ CW NL SR SX"},
    {"pl", "PL"},
    {"pt", "AO CV GW MZ PT ST TL"},
    {"pt-BR", "BR"},
    {"ro", "MD RO"},
    {"ru", "BY KG KZ RU"},
    {"sv", "AX SE"},
    {"th", "TH"},
    {"tl", "PH"},
    {"tr", "TR"},
    {"vi", "VN"},
    {"zh", "TW"},
    {"zh-CN", "CN"},
    {"zh-HK", "HK MO"},
};
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
char upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

const LocaleText& localeText(std::string_view tag) {
  for (const auto& l : kLocales) {
    if (l.tag == tag) return l;
  }
  if (auto canonical = canonicalLocale(tag)) return localeText(*canonical);
  return localeText("en");
}

void appendEscaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
}

bool isPlaceholderName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string_view trimSpaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// The one substitution function: replaces every `{name}` and `{{name}}` in `pattern` with
// `value(name, doubled)`, or keeps it as written when that gives nullopt. What it inserts is not
// scanned again, so a caller's value can never smuggle in a placeholder. With `html`, the pattern's
// own text and the values are both HTML-escaped.
template <class Value>
std::string expand(std::string_view pattern, Value&& value, bool html = false) {
  std::string out;
  out.reserve(pattern.size() + 32);
  auto put = [&](std::string_view s) { html ? appendEscaped(out, s) : void(out += s); };
  std::size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] == '{') {
      bool doubled = pattern.substr(i, 2) == "{{";
      std::size_t open = doubled ? 2 : 1;
      std::size_t close = pattern.find(doubled ? "}}" : "}", i + open);
      if (close != std::string_view::npos) {
        std::string_view name = trimSpaces(pattern.substr(i + open, close - i - open));
        if (isPlaceholderName(name)) {
          if (std::optional<std::string> v = value(name, doubled)) {
            put(*v);
            i = close + open;
            continue;
          }
        }
      }
    }
    put(pattern.substr(i, 1));
    ++i;
  }
  return out;
}

// The value of a message variable, by the name the patterns give it.
std::optional<std::string> variable(const MessageVars& vars, std::string_view name) {
  if (name == "friendly_name") return vars.friendly_name;
  if (name == "code") return vars.code;
  if (name == "ttl") return std::to_string(vars.ttl_minutes);
  if (name == "amount") return vars.amount.value_or("");
  if (name == "payee") return vars.payee.value_or("");
  return std::nullopt;
}

// A locale pattern with the message variables filled in ({name} only).
std::string fill(std::string_view pattern, const MessageVars& vars, bool html = false) {
  return expand(
      pattern,
      [&](std::string_view name, bool doubled) {
        return doubled ? std::nullopt : variable(vars, name);
      },
      html);
}

// `first` (a sentence without its final punctuation) followed by complete sentences.
std::string sentences(const LocaleText& l, std::string first,
                      const std::vector<std::string>& rest) {
  if (rest.empty()) return first;
  first += l.stop;
  for (const auto& s : rest) {
    first += l.space;
    first += s;
  }
  return first;
}

bool hasPsd2(const MessageVars& vars) { return vars.amount.has_value() && vars.payee.has_value(); }

// The digits one by one, as the voice should read them ("1, 2, 3"); a multi-byte UTF-8
// character stays whole.
std::string spelledOut(std::string_view code, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < code.size(); ++i) {
    bool continuation = (static_cast<unsigned char>(code[i]) & 0xC0) == 0x80;
    if (i > 0 && !continuation) out += sep;
    out += code[i];
  }
  return out;
}

std::string twoBraces(std::string_view pattern) {
  return expand(pattern, [](std::string_view name, bool doubled) -> std::optional<std::string> {
    if (doubled) return std::nullopt;
    return "{{" + std::string(name) + "}}";
  });
}

}  // namespace

std::string escapeHtml(std::string_view s) {
  std::string out;
  appendEscaped(out, s);
  return out;
}

const std::vector<std::string>& supportedLocales() {
  static const std::vector<std::string> tags = [] {
    std::vector<std::string> v;
    for (const auto& l : kLocales) v.emplace_back(l.tag);
    return v;
  }();
  return tags;
}

std::optional<std::string> canonicalLocale(std::string_view tag) {
  for (const auto& l : kLocales) {
    if (l.tag.size() != tag.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < tag.size() && same; ++i) {
      char c = tag[i] == '_' ? '-' : tag[i];
      same = lower(c) == lower(l.tag[i]);
    }
    if (same) return std::string(l.tag);
  }
  return std::nullopt;
}

std::string localeForRegion(std::string_view region) {
  if (region.size() != 2) return "en";
  const std::string code{upper(region[0]), upper(region[1])};
  for (const auto& [locale, regions] : kRegions) {
    for (std::size_t i = 0; i + 2 <= regions.size(); i += 3) {
      if (regions.substr(i, 2) == code) return std::string(locale);
    }
  }
  return "en";
}

std::string smsText(const MessageVars& vars) {
  const LocaleText& l = localeText(vars.locale);
  std::vector<std::string> rest;
  if (hasPsd2(vars)) rest.push_back(fill(l.psd2, vars));
  if (vars.do_not_share) rest.push_back(std::string(l.no_share));
  std::string text = sentences(l, fill(l.base, vars), rest);
  if (vars.app_hash.empty()) return text;
  return "<#> " + text + "\n" + vars.app_hash;
}

Speech callSpeech(const MessageVars& vars) {
  const LocaleText& l = localeText(vars.locale);
  MessageVars spoken = vars;
  spoken.code = spelledOut(vars.code, l.digit_sep);
  std::vector<std::string> rest;
  if (hasPsd2(vars)) rest.push_back(fill(l.psd2, spoken));
  rest.push_back(fill(l.again, spoken));
  return Speech{sentences(l, fill(l.base, spoken), rest), std::string(l.tts)};
}

EmailContent emailContent(const MessageVars& vars,
                          const std::map<std::string, std::string>& substitutions) {
  const LocaleText& l = localeText(vars.locale);
  // {name} are the message variables; {{name}} come from `substitutions` (the message variables
  // when there is no such substitution), and vanish when neither has them.
  auto value = [&](std::string_view name, bool doubled) -> std::optional<std::string> {
    if (!doubled) return variable(vars, name);
    if (auto it = substitutions.find(std::string(name)); it != substitutions.end()) {
      return it->second;
    }
    return variable(vars, name).value_or("");
  };
  auto text = [&](std::string_view pattern) { return expand(pattern, value); };
  auto html = [&](std::string_view pattern) { return expand(pattern, value, true); };

  EmailContent out;
  auto custom_subject = substitutions.find("subject");
  out.subject =
      custom_subject != substitutions.end() ? text(custom_subject->second) : text(l.subject);

  std::vector<std::string_view> after;  // the sentences after the base one
  if (hasPsd2(vars)) after.push_back(l.psd2);
  after.push_back(l.expiry);
  if (vars.do_not_share) after.push_back(l.no_share);

  std::vector<std::string> rest;
  for (auto s : after) rest.push_back(text(s));
  out.text = sentences(l, text(l.base), rest);

  std::string& h = out.html;
  h += "<!DOCTYPE html>\n<html lang=\"";
  h += l.html_lang;
  h += l.rtl ? "\" dir=\"rtl\">\n" : "\">\n";
  h += "<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += "<title>" + escapeHtml(out.subject) + "</title>\n</head>\n";
  h += "<body style=\"margin:0;padding:24px;font-family:Arial,Helvetica,sans-serif;"
       "color:#1f2933\">\n";
  h += "<p>" + html(l.subject) + "</p>\n";
  h += "<p style=\"font-size:32px;letter-spacing:6px\"><strong>" + escapeHtml(vars.code) +
       "</strong></p>\n";
  for (auto s : after) h += "<p>" + html(s) + "</p>\n";
  h += "</body>\n</html>\n";
  return out;
}

const std::vector<MessageTemplate>& builtinTemplates() {
  static const std::vector<MessageTemplate> templates = [] {
    auto sid = [](int n) {
      std::string s = "HJ" + std::string(32, '0');
      s.back() = static_cast<char>('0' + n);
      return s;
    };
    std::vector<MessageTemplate> v{
        {sid(1), "Base Verification Template", {"sms", "voice"}, {}},
        {sid(2), "Base Verification Template 2 with do not share", {"sms"}, {}},
        {sid(3), "Base Verification Template 3", {"sms", "voice"}, {}},
        {sid(4), "Base Verification Template 4 with expiry", {"sms"}, {}},
    };
    for (const auto& l : kLocales) {
      std::string tag(l.tag);
      v[0].translations[tag] = twoBraces(l.base);
      v[1].translations[tag] =
          twoBraces(sentences(l, std::string(l.base), {std::string(l.dont_share)}));
      v[2].translations[tag] = twoBraces(l.code_first);
      v[3].translations[tag] =
          twoBraces(sentences(l, std::string(l.base), {std::string(l.expiry)}));
    }
    return v;
  }();
  return templates;
}

const MessageTemplate* findTemplate(std::string_view sid) {
  for (const auto& t : builtinTemplates()) {
    if (t.sid == sid) return &t;
  }
  return nullptr;
}

Result<std::string> renderTemplate(const MessageTemplate& t, const MessageVars& vars,
                                   const std::map<std::string, std::string>& custom) {
  auto found = t.translations.end();
  if (auto tag = canonicalLocale(vars.locale)) found = t.translations.find(*tag);
  if (found == t.translations.end()) found = t.translations.find("en");
  if (found == t.translations.end()) {
    if (t.translations.empty()) return fail(Error::internal("template has no text"));
    found = t.translations.begin();
  }

  std::optional<std::string> missing;
  std::string text =
      expand(found->second, [&](std::string_view name, bool doubled) -> std::optional<std::string> {
        if (!doubled) return std::nullopt;  // a single brace is text
        if (name == "friendly_name" || name == "code" || name == "ttl") return variable(vars, name);
        if (auto it = custom.find(std::string(name)); it != custom.end()) return it->second;
        if (!missing) missing = std::string(name);
        return std::nullopt;
      });
  if (missing) {
    return fail(Error::invalid("TemplateCustomSubstitutions", "no value for {{" + *missing + "}}"));
  }
  return text;
}

}  // namespace verifyd
