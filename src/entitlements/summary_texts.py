"""Sentences of the entitlement summary, per language.

Placeholders: {plan} plan name, {end} / {date} a formatted date, {incident} a coverage name,
{deductible} / {amount} formatted money, {count} a formatted number. Sentences avoid plural
forms so one text serves every count.
"""

from __future__ import annotations

from entitlements.catalog import CoverageKind

# key → locale → sentence
SENTENCES: dict[str, dict[str, str]] = {
    "covered": {
        "en": "Covered: {plan} protects this product until {end}.",
        "fil": "Sakop: pinoprotektahan ng {plan} ang produktong ito hanggang {end}.",
        "hi": "कवर है: यह उत्पाद {end} तक {plan} के तहत सुरक्षित है।",
        "sv": "Täckt: {plan} skyddar den här produkten till den {end}.",
        "ar": "مشمول بالتغطية: هذا المنتج محمي بموجب {plan} حتى {end}.",
        "vi": "Được bảo hành: {plan} bảo vệ sản phẩm này đến ngày {end}.",
    },
    "incident_covered": {
        "en": "{incident} is covered, with a deductible of {deductible}.",
        "fil": "Sakop ang {incident}, at may deductible na {deductible}.",
        "hi": "{incident} कवर है, और इस पर {deductible} की कटौती योग्य राशि लागू होगी।",
        "sv": "{incident} täcks, med en självrisk på {deductible}.",
        "ar": "{incident} ضمن التغطية، مع مبلغ تحمّل قدره {deductible}.",
        "vi": "{incident} thuộc phạm vi bảo hành, với mức khấu trừ {deductible}.",
    },
    "incident_no_deductible": {
        "en": "{incident} is covered, with no deductible.",
        "fil": "Sakop ang {incident}, at walang deductible.",
        "hi": "{incident} कवर है, और इस पर कोई कटौती योग्य राशि लागू नहीं होगी।",
        "sv": "{incident} täcks, utan självrisk.",
        "ar": "{incident} ضمن التغطية، دون أي مبلغ تحمّل.",
        "vi": "{incident} thuộc phạm vi bảo hành, không áp dụng mức khấu trừ.",
    },
    "claims_left": {
        "en": "Claims remaining: {count}.",
        "fil": "Bilang ng natitirang claim: {count}.",
        "hi": "शेष क्लेम की संख्या: {count}।",
        "sv": "Antal återstående skadeärenden: {count}.",
        "ar": "عدد المطالبات المتبقية: {count}.",
        "vi": "Số lần yêu cầu bảo hành còn lại: {count}.",
    },
    "aggregate_left": {
        "en": "Up to {amount} remains for repairs under this plan.",
        "fil": "Hanggang {amount} pa ang natitira para sa pag-aayos sa ilalim ng planong ito.",
        "hi": "इस योजना के तहत मरम्मत के लिए {amount} तक की राशि शेष है।",
        "sv": "Upp till {amount} återstår för reparationer enligt den här planen.",
        "ar": "يتبقى ما يصل إلى {amount} لتغطية الإصلاحات ضمن هذه الخطة.",
        "vi": "Gói này còn tối đa {amount} cho chi phí sửa chữa.",
    },
    "no_contract": {
        "en": "Not covered: no protection plan was found for this product.",
        "fil": "Hindi sakop: walang nakitang plano ng proteksyon para sa produktong ito.",
        "hi": "कवर नहीं है: इस उत्पाद के लिए कोई सुरक्षा योजना नहीं मिली।",
        "sv": "Inte täckt: vi hittade ingen serviceplan för den här produkten.",
        "ar": "غير مشمول بالتغطية: لم يتم العثور على خطة حماية لهذا المنتج.",
        "vi": "Không được bảo hành: không tìm thấy gói bảo hành nào cho sản phẩm này.",
    },
    "pending_payment": {
        "en": "Not covered yet: {plan} is waiting for its first payment.",
        "fil": "Hindi pa sakop: hinihintay pa ang unang bayad para sa {plan}.",
        "hi": "अभी कवर नहीं है: {plan} के पहले भुगतान का इंतज़ार है।",
        "sv": "Ännu inte täckt: {plan} väntar på den första betalningen.",
        "ar": "لم تبدأ التغطية بعد: {plan} بانتظار سداد الدفعة الأولى.",
        "vi": "Chưa được bảo hành: {plan} đang chờ khoản thanh toán đầu tiên.",
    },
    "abandoned": {
        "en": "Not covered: the purchase of {plan} was never completed.",
        "fil": "Hindi sakop: hindi natapos ang pagbili ng {plan}.",
        "hi": "कवर नहीं है: {plan} की खरीद पूरी नहीं हो पाई।",
        "sv": "Inte täckt: köpet av {plan} slutfördes aldrig.",
        "ar": "غير مشمول بالتغطية: لم تكتمل عملية شراء {plan}.",
        "vi": "Không được bảo hành: giao dịch mua {plan} chưa được hoàn tất.",
    },
    "not_yet_started": {
        "en": "Not covered yet: {plan} starts on {date}.",
        "fil": "Hindi pa sakop: magsisimula ang {plan} sa {date}.",
        "hi": "अभी कवर नहीं है: {plan} की अवधि {date} से शुरू होगी।",
        "sv": "Ännu inte täckt: {plan} börjar gälla den {date}.",
        "ar": "لم تبدأ التغطية بعد: يبدأ سريان {plan} في {date}.",
        "vi": "Chưa được bảo hành: {plan} bắt đầu có hiệu lực từ ngày {date}.",
    },
    "waiting_period": {
        "en": "Not covered yet: {plan} is in its waiting period until {date}.",
        "fil": "Hindi pa sakop: nasa waiting period pa ang {plan} hanggang {date}.",
        "hi": "अभी कवर नहीं है: {plan} की प्रतीक्षा अवधि {date} तक है।",
        "sv": "Ännu inte täckt: karenstiden för {plan} pågår till den {date}.",
        "ar": "لم تبدأ التغطية بعد: {plan} في فترة الانتظار حتى {date}.",
        "vi": "Chưa được bảo hành: {plan} đang trong thời gian chờ đến ngày {date}.",
    },
    "past_due_grace": {
        "en": "Not covered while payment is overdue: {plan} resumes if payment arrives by {date}.",
        "fil": (
            "Hindi sakop habang lampas na sa takdang petsa ang bayad: muling magiging aktibo"
            " ang {plan} kapag natanggap ang bayad nang hindi lalampas sa {date}."
        ),
        "hi": (
            "भुगतान बकाया रहने तक कवर नहीं है: यदि भुगतान {date} तक मिल जाता है,"
            " तो {plan} के तहत कवर फिर से शुरू हो जाएगा।"
        ),
        "sv": (
            "Inte täckt så länge betalningen är försenad: {plan} gäller igen"
            " om betalningen kommer in senast den {date}."
        ),
        "ar": (
            "غير مشمول بالتغطية ما دام السداد متأخرًا: تُستأنف تغطية {plan}"
            " إذا وصلت الدفعة في موعد أقصاه {date}."
        ),
        "vi": (
            "Không được bảo hành khi đang quá hạn thanh toán: {plan} sẽ có hiệu lực trở lại"
            " nếu chúng tôi nhận được thanh toán chậm nhất vào ngày {date}."
        ),
    },
    "lapsed": {
        "en": "Not covered: {plan} lapsed because payment was not received.",
        "fil": "Hindi sakop: nawalan ng bisa ang {plan} dahil hindi natanggap ang bayad.",
        "hi": "कवर नहीं है: भुगतान प्राप्त न होने के कारण {plan} की सुरक्षा समाप्त हो गई है।",
        "sv": "Inte täckt: {plan} har upphört att gälla eftersom betalningen uteblev.",
        "ar": "غير مشمول بالتغطية: توقف سريان {plan} لعدم استلام الدفعة.",
        "vi": "Không được bảo hành: {plan} đã hết hiệu lực do không nhận được thanh toán.",
    },
    "cancelled": {
        "en": "Not covered: {plan} was cancelled.",
        "fil": "Hindi sakop: kinansela ang {plan}.",
        "hi": "कवर नहीं है: {plan} को रद्द कर दिया गया है।",
        "sv": "Inte täckt: {plan} har sagts upp.",
        "ar": "غير مشمول بالتغطية: تم إلغاء {plan}.",
        "vi": "Không được bảo hành: {plan} đã bị hủy.",
    },
    "chargeback": {
        "en": "Not covered: {plan} ended because its payment was reversed by the card issuer.",
        "fil": "Hindi sakop: natapos ang {plan} dahil binawi ng nag-isyu ng card ang bayad.",
        "hi": "कवर नहीं है: कार्ड जारीकर्ता द्वारा भुगतान वापस ले लिए जाने के कारण {plan} समाप्त हो गया है।",
        "sv": "Inte täckt: {plan} har upphört eftersom kortutgivaren har återkallat betalningen.",
        "ar": "غير مشمول بالتغطية: انتهى {plan} لأن الجهة المصدرة للبطاقة استردّت الدفعة.",
        "vi": (
            "Không được bảo hành: {plan} đã chấm dứt do ngân hàng phát hành thẻ đã hoàn lại khoản thanh toán."
        ),
    },
    "expired": {
        "en": "Not covered: {plan} ended on {date}.",
        "fil": "Hindi sakop: natapos ang {plan} noong {date}.",
        "hi": "कवर नहीं है: {plan} की अवधि {date} को समाप्त हो गई।",
        "sv": "Inte täckt: {plan} löpte ut den {date}.",
        "ar": "غير مشمول بالتغطية: انتهى سريان {plan} في {date}.",
        "vi": "Không được bảo hành: {plan} đã kết thúc vào ngày {date}.",
    },
    "coverage_not_included": {
        "en": "Not covered: {plan} does not include {incident}.",
        "fil": "Hindi sakop: hindi kasama sa {plan} ang {incident}.",
        "hi": "कवर नहीं है: {plan} में {incident} शामिल नहीं है।",
        "sv": "Inte täckt: {plan} omfattar inte {incident}.",
        "ar": "غير مشمول بالتغطية: {incident} خارج نطاق تغطية {plan}.",
        "vi": "Không được bảo hành: {plan} không bao gồm {incident}.",
    },
    "limit_reached": {
        "en": "Not covered: {plan} has reached its claim limit.",
        "fil": "Hindi sakop: naabot na ng {plan} ang limitasyon sa bilang ng claim.",
        "hi": "कवर नहीं है: {plan} की क्लेम सीमा पूरी हो चुकी है।",
        "sv": "Inte täckt: {plan} har nått gränsen för antal skadeärenden.",
        "ar": "غير مشمول بالتغطية: تم بلوغ الحد الأقصى للمطالبات في {plan}.",
        "vi": "Không được bảo hành: {plan} đã đạt giới hạn số lần yêu cầu bảo hành.",
    },
}

INCIDENTS: dict[str, dict[CoverageKind, str]] = {
    "en": {
        CoverageKind.MECHANICAL_BREAKDOWN: "Mechanical or electrical breakdown",
        CoverageKind.ACCIDENTAL_DAMAGE: "Accidental damage",
        CoverageKind.SCREEN: "Screen repair",
        CoverageKind.BATTERY: "Battery replacement",
        CoverageKind.LIQUID_DAMAGE: "Liquid damage",
        CoverageKind.THEFT_LOSS: "Theft and loss",
        CoverageKind.POWER_SURGE: "Power surge damage",
        CoverageKind.IN_HOME_SERVICE: "In-home service",
    },
    "fil": {
        CoverageKind.MECHANICAL_BREAKDOWN: "Pagkasirang mekanikal o elektrikal",
        CoverageKind.ACCIDENTAL_DAMAGE: "Pinsalang dulot ng aksidente",
        CoverageKind.SCREEN: "Pag-aayos ng screen",
        CoverageKind.BATTERY: "Pagpapalit ng baterya",
        CoverageKind.LIQUID_DAMAGE: "Pinsalang dulot ng likido",
        CoverageKind.THEFT_LOSS: "Pagnanakaw at pagkawala",
        CoverageKind.POWER_SURGE: "Pinsalang dulot ng biglang pagtaas ng boltahe",
        CoverageKind.IN_HOME_SERVICE: "Serbisyo sa bahay",
    },
    "hi": {
        CoverageKind.MECHANICAL_BREAKDOWN: "यांत्रिक या विद्युत खराबी",
        CoverageKind.ACCIDENTAL_DAMAGE: "आकस्मिक क्षति",
        CoverageKind.SCREEN: "स्क्रीन की मरम्मत",
        CoverageKind.BATTERY: "बैटरी बदलना",
        CoverageKind.LIQUID_DAMAGE: "तरल पदार्थ से हुई क्षति",
        CoverageKind.THEFT_LOSS: "चोरी और गुम होना",
        CoverageKind.POWER_SURGE: "वोल्टेज में अचानक उछाल से हुई क्षति",
        CoverageKind.IN_HOME_SERVICE: "घर पर मरम्मत सेवा",
    },
    "sv": {
        CoverageKind.MECHANICAL_BREAKDOWN: "Mekaniskt eller elektriskt fel",
        CoverageKind.ACCIDENTAL_DAMAGE: "Olycksskada",
        CoverageKind.SCREEN: "Skärmreparation",
        CoverageKind.BATTERY: "Batteribyte",
        CoverageKind.LIQUID_DAMAGE: "Vätskeskada",
        CoverageKind.THEFT_LOSS: "Stöld och förlust",
        CoverageKind.POWER_SURGE: "Överspänningsskada",
        CoverageKind.IN_HOME_SERVICE: "Service i hemmet",
    },
    "ar": {
        CoverageKind.MECHANICAL_BREAKDOWN: "الأعطال الميكانيكية أو الكهربائية",
        CoverageKind.ACCIDENTAL_DAMAGE: "الأضرار العرضية",
        CoverageKind.SCREEN: "إصلاح الشاشة",
        CoverageKind.BATTERY: "استبدال البطارية",
        CoverageKind.LIQUID_DAMAGE: "الأضرار الناتجة عن السوائل",
        CoverageKind.THEFT_LOSS: "السرقة والفقدان",
        CoverageKind.POWER_SURGE: "الأضرار الناتجة عن ارتفاع الجهد الكهربائي",
        CoverageKind.IN_HOME_SERVICE: "خدمة الإصلاح في المنزل",
    },
    "vi": {
        CoverageKind.MECHANICAL_BREAKDOWN: "Hư hỏng do lỗi cơ khí hoặc điện",
        CoverageKind.ACCIDENTAL_DAMAGE: "Hư hỏng do tai nạn",
        CoverageKind.SCREEN: "Sửa chữa màn hình",
        CoverageKind.BATTERY: "Thay pin",
        CoverageKind.LIQUID_DAMAGE: "Hư hỏng do chất lỏng",
        CoverageKind.THEFT_LOSS: "Mất cắp và thất lạc",
        CoverageKind.POWER_SURGE: "Hư hỏng do sốc điện",
        CoverageKind.IN_HOME_SERVICE: "Dịch vụ sửa chữa tại nhà",
    },
}
